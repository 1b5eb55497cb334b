"""The server as a Python object: `pimpmyllama.create_app` mounted inside another ASGI app."""

from fastapi import FastAPI
from fastapi.testclient import TestClient

import pimpmyllama


def test_the_app_mounts_in_another_app(stored_tiny):
    outer = FastAPI()
    outer.mount("/llm", pimpmyllama.create_app())
    with TestClient(outer) as client:
        assert client.get("/llm/health").json() == {"status": "ok"}
        reply = client.post("/llm/v1/chat/completions", json={
            "model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "ignore_eos": True})
        assert reply.status_code == 200 and reply.json()["usage"]["completion_tokens"] == 2
        assert "tiny" in [m["id"] for m in client.get("/llm/v1/models").json()["data"]]
