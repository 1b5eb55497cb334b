"""A remote engine's failures, against a stub endpoint: each is one line (a PmlError),
429/503 are retried as stated, and the session keeps what it had — a refused request
adds no turn, a reply that breaks off is stored as interrupted with what arrived."""

import time

import pytest
from remote_stub import Stub, chunk, streamed

from pimpmyllama.chat.opening import open_conversation
from pimpmyllama.errors import ContextOverflowError, InvalidInputError, RemoteError


def build_file(tmp_path, url, extra=""):
    path = tmp_path / "remote.yml"
    path.write_text(f"from: {{endpoint: {url}, model: big{extra}}}\nsystem: Be brief.\n"
                    "memory: {enabled: false}\nparameters: {temperature: 0, max_new_tokens: 20}\n")
    return str(path)


def chat(tmp_path, stub, extra=""):
    conversation, _ = open_conversation(build_file(tmp_path, stub.url, extra), "s1")
    return conversation


def turns(conversation):
    return [(t.user, t.reply, t.status) for t in conversation.sessions.turns(conversation.session)]


def test_a_reply_streams_with_the_builds_parameters_and_is_stored(pml_home, tmp_path):
    with Stub([("stream", streamed("Hel", "lo", "!"))]) as stub:
        conversation = chat(tmp_path, stub)
        reply = conversation.send("Hi")
        assert list(reply) == ["Hel", "lo", "!"]
    assert reply.completion.finish_reason == "stop"
    assert reply.completion.usage.prompt_tokens == 11 and reply.completion.usage.completion_tokens == 3
    sent = stub.requests[0]
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert (sent["model"], sent["stream"], sent["max_tokens"], sent["temperature"], sent["top_p"]) == \
        ("big", True, 20, 0.0, 0.9)
    assert turns(conversation) == [("Hi", "Hello!", "complete")]
    # The stub has no /tokenize: the packer estimated, and says so.
    assert reply.context.counted_by.startswith("estimate")
    assert conversation.engine.context_length == 2048


@pytest.mark.parametrize("answer, error, line", [
    (("status", 500, {"error": {"message": "boom"}}, {}), RemoteError, "failed (500: boom)"),
    (("status", 401, {"error": {"message": "invalid api key"}}, {}), RemoteError,
     "refused the key (401: invalid api key); give one with api_key_env in the build's from:"),
    (("status", 404, {"error": {"message": "model 'big' not found"}}, {}), RemoteError,
     "refused the request (404: model 'big' not found)"),
    (("status", 400, {"error": {"message": "This model's maximum context length is 2048 tokens",
                                "code": "context_length_exceeded"}}, {}), ContextOverflowError,
     "refused the prompt as over its context (This model's maximum context length is 2048 tokens); "
     "set a smaller num_ctx in the build's from:"),
])
def test_a_refused_request_is_one_line_and_adds_no_turn(pml_home, tmp_path, answer, error, line):
    with Stub([("stream", streamed("ok")), answer]) as stub:
        conversation = chat(tmp_path, stub)
        conversation.send("first").text()
        with pytest.raises(error) as raised:
            conversation.send("second")
    assert str(raised.value) == f"the remote at {stub.url} {line}"
    assert len(stub.requests) == 2  # not retried
    assert turns(conversation) == [("first", "ok", "complete")]


def test_429_is_retried_after_what_retry_after_asks(pml_home, tmp_path):
    busy = ("status", 429, {"error": {"message": "slow down"}}, {"Retry-After": "1"})
    with Stub([busy, ("stream", streamed("fine"))]) as stub:
        conversation = chat(tmp_path, stub)
        started = time.monotonic()
        assert conversation.send("Hi").text() == "fine"
        assert time.monotonic() - started >= 1.0
    assert len(stub.requests) == 2
    assert turns(conversation) == [("Hi", "fine", "complete")]


def test_503_without_retry_after_backs_off_then_gives_up(pml_home, tmp_path, monkeypatch):
    import pimpmyllama.generation.remote_http as remote_http

    waits = []
    monkeypatch.setattr(remote_http.time, "sleep", waits.append)
    busy = ("status", 503, {"error": {"message": "overloaded"}}, {})
    with Stub([busy]) as stub:
        conversation = chat(tmp_path, stub, ", max_retries: 2")
        with pytest.raises(RemoteError) as raised:
            conversation.send("Hi")
    assert str(raised.value) == f"the remote at {stub.url} is busy (503: overloaded); gave up after 2 retries"
    assert waits == [0.5, 1.0] and len(stub.requests) == 3
    assert turns(conversation) == []


def test_a_retry_after_beyond_the_longest_wait_is_not_waited(pml_home, tmp_path):
    with Stub([("status", 429, {"error": "quota"}, {"Retry-After": "3600"})]) as stub:
        conversation = chat(tmp_path, stub)
        with pytest.raises(RemoteError, match=r"busy \(429: quota\); gave up: it asks to wait 3600 s"):
            conversation.send("Hi")
    assert len(stub.requests) == 1


def test_a_dropped_connection_mid_reply_stores_the_turn_as_interrupted(pml_home, tmp_path):
    with Stub([("drop", [chunk("Half "), chunk("a reply")])]) as stub:
        conversation = chat(tmp_path, stub)
        reply = conversation.send("Tell me")
        pieces = []
        with pytest.raises(RemoteError) as raised:
            for piece in reply:
                pieces.append(piece)
    assert pieces == ["Half ", "a reply"]
    assert str(raised.value).startswith(f"the remote at {stub.url} dropped the connection mid-reply")
    assert "\n" not in str(raised.value)
    assert turns(conversation) == [("Tell me", "Half a reply", "interrupted")]


def test_a_stall_mid_reply_times_out_and_stores_the_turn_as_interrupted(pml_home, tmp_path):
    with Stub([("stall", [chunk("Thinking")], 3)]) as stub:
        conversation = chat(tmp_path, stub, ", timeout: 0.5")
        with pytest.raises(RemoteError) as raised:
            conversation.send("Hi").text()
    assert str(raised.value) == f"the remote at {stub.url} stalled: nothing for 0.5 s mid-reply"
    assert turns(conversation) == [("Hi", "Thinking", "interrupted")]


def test_a_stall_before_any_answer_times_out_and_adds_no_turn(pml_home, tmp_path):
    with Stub([("stream", streamed("ok")), ("stall", [], 3)]) as stub:
        conversation = chat(tmp_path, stub, ", timeout: 0.5")
        conversation.send("first").text()
        # The stall sends its headers and no event: the reply starts, then times out empty.
        with pytest.raises(RemoteError, match="stalled: nothing for 0.5 s"):
            conversation.send("second").text()
    assert turns(conversation) == [("first", "ok", "complete"), ("second", "", "interrupted")]


def test_an_unreachable_endpoint_fails_before_a_session_is_made(pml_home, tmp_path):
    from serve_client import free_port

    from pimpmyllama.memory.sessions import SessionStore
    from pimpmyllama.storage.db import open_database

    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(RemoteError) as raised:
        open_conversation(build_file(tmp_path, url), "s1")
    assert str(raised.value) == f"cannot reach the remote at {url} (connection refused)"
    assert SessionStore(open_database()).find("s1") is None


def test_an_unset_key_variable_is_named(pml_home, tmp_path, monkeypatch):
    monkeypatch.delenv("PML_TEST_KEY", raising=False)
    with Stub([("stream", streamed("ok"))]) as stub:
        with pytest.raises(InvalidInputError, match="the environment variable PML_TEST_KEY .* is not set"):
            chat(tmp_path, stub, ", api_key_env: PML_TEST_KEY")
        monkeypatch.setenv("PML_TEST_KEY", "sekrit")
        assert chat(tmp_path, stub, ", api_key_env: PML_TEST_KEY").send("Hi").text() == "ok"
