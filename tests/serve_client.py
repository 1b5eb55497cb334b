"""Helpers for the server's tests: a chat request, and a stream's events."""


def chat(client, content="Hi", model="tiny", **fields):
    """POST /v1/chat/completions with one user message; returns the response."""
    body = {"model": model, "messages": [{"role": "user", "content": content}], **fields}
    return client.post("/v1/chat/completions", json=body)


def sse_events(response) -> list[str]:
    """The `data:` payloads of a server-sent event stream, in order."""
    assert response.headers["content-type"].startswith("text/event-stream")
    return [line.removeprefix("data: ") for line in response.text.split("\n\n") if line]


def wait_until_healthy(url: str, process=None, seconds: float = 120, log=None) -> None:
    """Wait for `url`/health to answer 200 (a server process that exits fails at once)."""
    import time
    import urllib.error
    import urllib.request

    import pytest

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}" + (f":\n{log.read_text()}" if log else ""))
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.HTTPError):
            pass
        time.sleep(0.1)
    pytest.fail(f"the server at {url} did not answer /health within {seconds:.0f} s")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_in_thread(app):
    """Run `app` with uvicorn on a free port, in this process: (its URL, stop())."""
    import threading
    import time

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)

    def stop():
        server.should_exit = True
        thread.join(timeout=30)

    return f"http://127.0.0.1:{server.config.port}", stop


def serve_in_process(home, app_args: str = ""):
    """`pimpmyllama.serving.app.create_app(<app_args>)` under uvicorn in a process of its
    own with PML_HOME=`home`, on a free port: yields its URL, stops it afterwards."""
    import contextlib
    import os
    import subprocess
    import sys

    @contextlib.contextmanager
    def running():
        port = free_port()
        code = ("import uvicorn; from pimpmyllama.serving.app import create_app; "
                f"uvicorn.run(create_app({app_args}), host='127.0.0.1', port={port}, log_level='warning')")
        process = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PML_HOME": str(home)})
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(url, process)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)

    return running()
