"""The Python API does what the CLI does, with no terminal: chat with a session,
knowledge bases, training, merging and measuring, on the tiny model."""

import json
from pathlib import Path

import pytest

import pimpmyllama as pml
from pimpmyllama.errors import NotFoundError
from pimpmyllama.storage.db import open_database


def test_the_package_exposes_the_api_lazily():
    import subprocess
    import sys

    code = "import sys, pimpmyllama; assert 'torch' not in sys.modules; print(pimpmyllama.open_chat.__module__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "pimpmyllama.api", result.stderr
    with pytest.raises(AttributeError):
        pml.no_such_function  # noqa: B018
    import pimpmyllama.api as api

    clashes = [name for name in api.__all__ if (Path(pml.__file__).parent / name).exists()]
    assert clashes == []  # an API name must not be shadowed by a subpackage


def test_chat_in_a_session_then_ask(stored_tiny, pml_home):
    chat = pml.open_chat("tiny", session="s1", precision="fp32")
    reply = chat.send("hello")
    text = reply.text()
    assert reply.completion.usage.completion_tokens >= 1
    rows = open_database().query("SELECT user_message, reply FROM turns")
    assert rows == [{"user_message": "hello", "reply": text}]
    assert isinstance(pml.ask("hello again", "tiny", precision="fp32"), str)
    assert [(row.name, row.info.architecture) for row in pml.list_models()] == [("tiny", "llama")]
    with pytest.raises(NotFoundError, match="unknown build or model 'nope'"):
        pml.open_chat("nope")


@pytest.fixture
def seed_dir(tmp_path):
    from seed_data import write_seed

    return write_seed(tmp_path / "seed")


def test_a_knowledge_base_through_the_api(pml_home, seed_dir):
    kb = pml.create_knowledge_base("town", chunk_size=200, overlap=40)
    report = kb.add([str(seed_dir)])
    assert len(report.added) == 4
    hits = kb.search("When does the post office open?", k=2)
    assert len(hits) == 2 and "9" in hits[0].chunk.text
    assert [s.name for s in pml.list_knowledge_bases()] == ["town"]
    assert pml.knowledge_base("town").reindex() == sum(1 for _ in kb.store.all_chunks(kb.record))


def test_train_merge_and_measure_through_the_api(stored_tiny, pml_home, tmp_path):
    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"what is {i} plus {i}?"},
                                                     {"role": "assistant", "content": str(2 * i)}]}) + "\n"
                            for i in range(20)))
    result = pml.train(**{"from": "tiny", "data": [str(data)], "output": "form", "max_steps": 1,
                          "batch_size": 2, "max_length": 64, "eval_split": 0.1})
    assert (result.kind, result.steps) == ("adapter", 1)
    pml.merge_lora("tiny", "form", "baked")
    value, tokens = pml.perplexity("tiny+form", [str(data)])
    baked, same_tokens = pml.perplexity("baked", [str(data)])
    assert tokens == same_tokens > 0 and baked == pytest.approx(value, rel=1e-4)
    out = pml.export("tiny+form", tmp_path / "exported")
    assert (out / "model.safetensors").exists() and (out / "pml-model.json").exists()
