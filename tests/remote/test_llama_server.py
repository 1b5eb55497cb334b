"""A build on llama.cpp's llama-server running the default model's GGUF (skipped where
llama-server is not built): the packer's counts are llama-server's own, the reply
streams, and the system prompt is heard."""

import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from serve_client import free_port

from pimpmyllama.chat.opening import open_conversation

# where `make bench-serve` builds it, or PML_LLAMA_SERVER
LLAMA_SERVER = Path(os.environ.get("PML_LLAMA_SERVER", Path(__file__).parents[2] / ".bench/llama.cpp/build/bin/llama-server"))


def _gguf() -> Path | None:
    from pimpmyllama.errors import PmlError
    from pimpmyllama.models.defaults import bundled_default_gguf

    try:
        return bundled_default_gguf()
    except PmlError:
        return None


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    gguf = _gguf()
    if not LLAMA_SERVER.exists() or gguf is None:
        pytest.skip("llama-server or the default model's GGUF is not here")
    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen([str(LLAMA_SERVER), "-m", str(gguf), "--port", str(port), "-t", "2", "-c", "1024"],
                                   stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, log.read_text()
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_counts_equal_llama_servers_and_the_reply_streams(pml_home, tmp_path, llama_server):
    build = tmp_path / "smol.yml"
    build.write_text(f"from: {{endpoint: {llama_server}/v1, model: smol}}\n"
                     "system: Your name is Zorblax. Always say your name.\n"
                     "memory: {enabled: false}\nparameters: {temperature: 0, max_new_tokens: 24}\n")
    conversation, _ = open_conversation(str(build), "s1")
    assert conversation.engine.context_length == 1024  # from llama-server's /props
    reply = conversation.send("What is your name?")
    pieces = list(reply)
    assert len(pieces) > 3 and "Zorblax" in "".join(pieces)
    prompt = httpx.post(f"{llama_server}/apply-template", json={"messages": reply.context.messages}).json()["prompt"]
    tokens = httpx.post(f"{llama_server}/tokenize", json={"content": prompt, "add_special": True}).json()["tokens"]
    assert reply.context.counted_by == "the endpoint's /tokenize"
    assert reply.context.total_tokens == len(tokens) == reply.completion.usage.prompt_tokens
    assert reply.context.num_ctx == 1024
