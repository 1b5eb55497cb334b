"""Helpers for the server's tests: a chat request, and a stream's events."""


def chat(client, content="Hi", model="tiny", **fields):
    """POST /v1/chat/completions with one user message; returns the response."""
    body = {"model": model, "messages": [{"role": "user", "content": content}], **fields}
    return client.post("/v1/chat/completions", json=body)


def sse_events(response) -> list[str]:
    """The `data:` payloads of a server-sent event stream, in order."""
    assert response.headers["content-type"].startswith("text/event-stream")
    return [line.removeprefix("data: ") for line in response.text.split("\n\n") if line]
