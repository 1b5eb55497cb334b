"""Streamed chat completions: OpenAI's chunks, joined, are the reply; [DONE] ends them."""

import json

from serve_client import chat, sse_events


def test_chunks_join_into_the_reply_and_end_with_done(client, fake_engine):
    fake_engine.replies.append("one two three")
    events = sse_events(chat(client, stream=True))
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "one two three"
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, None, None, "stop"]
    assert all("usage" not in c for c in chunks)


def test_include_usage_adds_a_last_chunk_with_the_usage(client, fake_engine):
    fake_engine.replies.append("one two three")
    events = sse_events(chat(client, stream=True, stream_options={"include_usage": True}))
    assert events[-1] == "[DONE]"
    *pieces, last = [json.loads(e) for e in events[:-1]]
    assert all(c["usage"] is None for c in pieces)
    prompt_tokens = len(fake_engine.prompt_ids[0])
    assert last["choices"] == []
    assert last["usage"] == {"prompt_tokens": prompt_tokens, "completion_tokens": 3, "total_tokens": prompt_tokens + 3}


def test_an_error_after_the_stream_began_is_its_last_event(client, fake_engine):
    from pimpmyllama.errors import InvalidInputError

    fake_engine.replies.append(("half a", InvalidInputError("the engine gave up")))
    events = sse_events(chat(client, stream=True))
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2]) == {"error": {"message": "the engine gave up", "type": "invalid_request_error",
                                                "param": None, "code": None}}
    text = "".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-2])
    assert text == "half a"
