"""A remote named in remotes.yml, and counting with a local tokenizer of the same family
when the endpoint has no /tokenize."""

import pytest
from remote_stub import Stub, streamed

from pimpmyllama.chat.opening import open_conversation
from pimpmyllama.errors import NotFoundError


def test_a_named_remote_with_the_builds_keys_winning(pml_home, tmp_path):
    with Stub([("stream", streamed("ok"))]) as stub:
        pml_home.mkdir(parents=True, exist_ok=True)
        (pml_home / "remotes.yml").write_text(f"box: {{endpoint: {stub.url}, num_ctx: 4096, timeout: 5}}\n")
        build = tmp_path / "b.yml"
        build.write_text("from: {remote: box, model: big, num_ctx: 1024}\nmemory: {enabled: false}\n")
        conversation, _ = open_conversation(str(build), "s1")
        assert conversation.send("Hi").text() == "ok"
    engine = conversation.engine
    assert (engine.name, engine.context_length, engine.client.timeout) == ("box/big", 1024, 5.0)
    build.write_text("from: {remote: nowhere, model: big}\n")
    with pytest.raises(NotFoundError, match=r"unknown remote 'nowhere' \(remotes.yml names: box\)"):
        open_conversation(str(build), "s2")


def test_a_local_tokenizer_counts_when_the_endpoint_has_none(stored_tiny, tmp_path):
    from pimpmyllama.models.refs import resolve_model_folder
    from pimpmyllama.prompting.format import ChatFormat
    from pimpmyllama.prompting.tokenizer import Tokenizer

    with Stub([("stream", streamed("ok"))]) as stub:
        build = tmp_path / "b.yml"
        build.write_text(f"from: {{endpoint: {stub.url}, model: big, tokenizer: tiny}}\nsystem: Be brief.\n"
                         "memory: {enabled: false}\n")
        conversation, _ = open_conversation(str(build), "s1")
        reply = conversation.send("Hi there")
        reply.text()
    local = ChatFormat(Tokenizer(resolve_model_folder("tiny")[1]))
    assert reply.context.counted_by == "the local tokenizer of tiny"
    assert reply.context.total_tokens == local.count(stub.requests[0]["messages"])
