"""Stop strings and max_tokens through the real engine on the tiny model: the reply
ends before a stop string (which is never shown), and at max_tokens tokens."""

import json
import re

import pytest
from fastapi.testclient import TestClient
from serve_client import chat, sse_events

from pimpmyllama.serving.app import create_app


@pytest.fixture
def real_client(stored_tiny):
    with TestClient(create_app()) as client:
        yield client


def test_max_tokens_and_stop(real_client):
    greedy = {"temperature": 0, "max_tokens": 24}
    # A random tiny model's logits are near ties: the first call (whole prompt computed)
    # and the later ones (prompt prefix reused from the cache) can differ; compare later ones.
    chat(real_client, "Tell me a story", **greedy)
    full = chat(real_client, "Tell me a story", **greedy).json()
    assert full["choices"][0]["finish_reason"] == "length"
    assert full["usage"]["completion_tokens"] == 24
    text = full["choices"][0]["message"]["content"]
    stop = re.search("[A-Za-z]{3}", text[1:]).group()  # not at the start: some text comes before it
    assert text.index(stop) > 0
    cut = chat(real_client, "Tell me a story", stop=[stop], **greedy).json()
    assert cut["choices"][0]["message"]["content"] == text[: text.index(stop)]
    assert cut["choices"][0]["finish_reason"] == "stop"
    # Streamed, the same text arrives, and never the stop string's beginning.
    events = sse_events(chat(real_client, "Tell me a story", stop=stop, stream=True, **greedy))
    pieces = [json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1]]
    assert "".join(pieces) == text[: text.index(stop)]
