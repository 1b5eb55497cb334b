"""A build whose model is remote — our own `pml serve` on the tiny model, in a process
of its own — with every request recorded on the way (a forwarding stub): the remote
gets the system prompt and the knowledge, the packer counts with the remote's own
/tokenize, an evicted turn comes back through memory, and `pml compare` puts a local
and a remote variant in one report."""

import json

import httpx
import pytest
from remote_stub import Stub
from serve_client import serve_in_process

from pimpmyllama.chat.opening import open_conversation


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model):
    home = tmp_path_factory.mktemp("remote-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PML_HOME", str(home))
        from pimpmyllama.models.store import ModelStore

        ModelStore().import_model(tiny_model, "tiny")
    with serve_in_process(home) as url:
        yield url


@pytest.fixture
def remote(server):
    """The server behind a stub that records each chat request (`.requests`)."""
    with Stub([("forward", server)]) as stub:
        stub.upstream = server
        yield stub


def write_build(tmp_path, url, text):
    path = tmp_path / "remote.yml"
    path.write_text(f"from: {{endpoint: {url}, model: tiny}}\n" + text)
    return str(path)


def remote_count(server, messages) -> int:
    prompt = httpx.post(f"{server}/apply-template", json={"model": "tiny", "messages": messages}).json()["prompt"]
    tokens = httpx.post(f"{server}/tokenize", json={"model": "tiny", "content": prompt, "add_special": True})
    return len(tokens.json()["tokens"])


def test_the_remote_gets_the_system_prompt_and_knowledge_counted_with_its_tokenizer(pml_home, tmp_path, remote,
                                                                                    server):
    import pimpmyllama as pml

    doc = tmp_path / "hours.md"
    doc.write_text("The post office opens at 9am on weekdays.\n")
    pml.create_knowledge_base("town").add([str(doc)])
    build = write_build(tmp_path, remote.url, "system: You are the town clerk.\nknowledge: [town]\n"
                        "memory: {enabled: false}\nparameters: {temperature: 0, max_new_tokens: 8, num_ctx: 512}\n")
    conversation, _ = open_conversation(build, "s1")
    reply = conversation.send("When does the post office open?")
    text = reply.text()

    sent = remote.requests[-1]["messages"]
    assert sent[0] == {"role": "system", "content": "You are the town clerk."}
    assert sent[1]["role"] == "user" and len(sent) == 2
    assert "The post office opens at 9am on weekdays." in sent[1]["content"]
    assert "When does the post office open?" in sent[1]["content"]
    assert [p.source for p in reply.context.knowledge] == [f"{doc}#0"]
    # Counted as the remote counts: its /tokenize, and the prompt size its own reply reports.
    assert reply.context.counted_by == "the endpoint's /tokenize"
    assert reply.context.total_tokens == remote_count(server, sent) == reply.completion.usage.prompt_tokens
    assert reply.completion.usage.completion_tokens == 8 and text
    assert [(t.user, t.reply, t.status) for t in conversation.sessions.turns(conversation.session)] == [
        ("When does the post office open?", text, "complete")]


def test_a_turn_evicted_from_the_window_comes_back_through_memory(pml_home, tmp_path, remote):
    build = write_build(tmp_path, remote.url, "parameters: {temperature: 0, max_new_tokens: 8, num_ctx: 120}\n"
                        "memory: {recall_k: 1}\n")
    conversation, _ = open_conversation(build, "s1")
    conversation.send("My cat is called Whiskers and she is orange.").text()
    for _ in range(4):
        conversation.send("What should I cook for dinner tonight?").text()
    assert 0 in conversation.evicted_turns()
    reply = conversation.send("What is the name of my cat?")
    reply.text()
    assert [p.source for p in reply.context.recalled] == ["turn #0"]
    system = remote.requests[-1]["messages"][0]
    assert system["role"] == "system" and "From earlier in this conversation:" in system["content"]
    assert "My cat is called Whiskers" in system["content"]


def test_compare_puts_a_local_and_a_remote_variant_in_one_report(stored_tiny, tmp_path, remote):
    import pimpmyllama as pml

    (tmp_path / "questions.jsonl").write_text(json.dumps({"question": "Say something."}) + "\n")
    spec = tmp_path / "compare.yml"
    spec.write_text("questions: questions.jsonl\nperplexity: false\nvariants:\n"
                    "  local: {model: tiny, parameters: {max_new_tokens: 4}}\n"
                    f"  remote: {{build: {{from: {{endpoint: {remote.url}, model: tiny}}, system: Be brief.}}, "
                    "parameters: {max_new_tokens: 4}}\n")
    results = pml.compare(spec, tmp_path / "out")
    assert [(r.variant, r.reply_tokens) for r in results.rows] == [("local", 4), ("remote", 4)]
    assert [v.engine for v in results.variants] == ["tiny", f"tiny@{remote.url}"]
    assert remote.requests[-1]["messages"][0] == {"role": "system", "content": "Be brief."}
    report = (tmp_path / "out" / "report.md").read_text()
    assert "local" in report and "remote" in report and f"tiny@{remote.url}" in report
