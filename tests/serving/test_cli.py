"""`pml serve`: its options reach uvicorn and the app; bad ones are one line, exit 2."""

import socket
import subprocess
import sys
import time

import httpx
import pytest
from cli_run import assert_one_line_error, pml
from fastapi.testclient import TestClient
from serve_client import free_port
from typer.testing import CliRunner


@pytest.fixture
def served(monkeypatch, pml_home):
    """Runs `pml serve ...` in-process with uvicorn.run replaced: returns (result, what uvicorn got)."""
    import uvicorn

    from pimpmyllama.cli.main import app

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda asgi, **options: calls.append((asgi, options)))

    def invoke(*args):
        return CliRunner().invoke(app, ["serve", *args]), calls

    return invoke




def test_options_reach_uvicorn_and_the_key_the_app(served, tmp_path):
    port = free_port()
    key_file = tmp_path / "key"
    key_file.write_text("  from-a-file \n")
    result, calls = served("--port", str(port), "--api-key-file", str(key_file))
    assert result.exit_code == 0, result.output
    (asgi, options), = calls
    assert options == {"host": "127.0.0.1", "port": port, "log_level": "info"}
    client = TestClient(asgi)
    assert client.get("/v1/models").status_code == 401
    assert client.get("/v1/models", headers={"Authorization": "Bearer from-a-file"}).status_code == 200


def test_bad_options_are_one_line(pml_home, tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        port = str(busy.getsockname()[1])
        assert_one_line_error(pml("serve", "--port", port, home=pml_home), f"cannot listen on 127.0.0.1:{port}")
    finally:
        busy.close()
    assert_one_line_error(pml("serve", "--api-key", "a", "--api-key-file", "f", home=pml_home),
                          "give --api-key or --api-key-file, not both")
    assert_one_line_error(pml("serve", "--api-key-file", str(tmp_path / "none"), home=pml_home), "no API key file")
    assert_one_line_error(pml("serve", "--port", "70000", home=pml_home), "between 1 and 65535")


def test_a_real_server_process(pml_home):
    import os

    port = free_port()
    env = {**os.environ, "PML_HOME": str(pml_home)}
    process = subprocess.Popen([sys.executable, "-m", "pimpmyllama", "serve", "--port", str(port), "--api-key", "k"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"{url}/health")
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline and process.poll() is None, "the server did not start"
                time.sleep(0.2)
        assert health.json() == {"status": "ok"}
        assert httpx.get(f"{url}/v1/models").status_code == 401
        models = httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer k"})
        assert [m["id"] for m in models.json()["data"]] == ["smollm2-135m-instruct"]
    finally:
        process.terminate()
        process.wait(timeout=30)
