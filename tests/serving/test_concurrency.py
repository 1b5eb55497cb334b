"""The server under concurrent clients, on a real uvicorn server (in a thread) over
the tiny model slowed to a known pace: requests decode together, a full queue is
503 with Retry-After, a client that goes away stops its generation within a few
tokens, /metrics counts it all, /health is 503 while a model loads."""

import json
import re
import threading
import time

import httpx
import pytest
from serve_client import serve_in_thread, wait_until_healthy

from pimpmyllama.serving.app import create_app


@pytest.fixture
def server(stored_tiny, slow_model):
    url, stop = serve_in_thread(create_app(max_batch=2, max_queue=1, preload=("tiny",)))
    wait_until_healthy(url, seconds=300)  # loading may build the kernels first
    yield url
    stop()


def body(**fields) -> dict:
    return {"model": "tiny", "messages": [{"role": "user", "content": "Tell me a story"}], "temperature": 0,
            "ignore_eos": True, **fields}


def metric(url: str, name: str, **labels) -> float:
    text = httpx.get(f"{url}/metrics").text
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if re.fullmatch(rf"{name}(\{{{wanted}\}})? \S+", line):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_client_that_disconnects_stops_its_generation(server):
    read = 0
    with httpx.stream("POST", f"{server}/v1/chat/completions", json=body(stream=True, max_tokens=200),
                      timeout=60) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and json.loads(line[6:])["choices"][0]["delta"].get("content"):
                read += 1
                if read == 3:
                    break
    closed = time.perf_counter()
    while metric(server, "pml_sequences_finished_total", model="tiny", reason="interrupted") < 1:
        assert time.perf_counter() - closed < 10, "the generation went on after the client left"
        time.sleep(0.01)
    generated = metric(server, "pml_completion_tokens_total", model="tiny")
    # the server may have run ahead of the client's reading by what the socket buffers
    # and the step at hand: a few tokens, not the 200 asked for
    assert 3 <= generated <= 3 + 8
    # and it is still serving
    reply = httpx.post(f"{server}/v1/chat/completions", json=body(max_tokens=4), timeout=30).json()
    assert reply["usage"]["completion_tokens"] == 4


def test_requests_decode_together_and_a_full_queue_is_503_with_retry_after(server):
    # 2 decode at once, 1 more may wait; a 4th is refused while they run
    results = []

    def ask():
        results.append(httpx.post(f"{server}/v1/chat/completions", json=body(max_tokens=40), timeout=60))

    clients = [threading.Thread(target=ask) for _ in range(3)]
    for arrived, client in enumerate(clients, 1):
        client.start()
        started = time.perf_counter()  # they arrive in order: two run, one waits
        while (metric(server, "pml_batch_running", model="tiny") + metric(server, "pml_queue_waiting", model="tiny")
               < arrived):
            assert time.perf_counter() - started < 30, "a request never reached the batcher"
            time.sleep(0.01)
    refused = httpx.post(f"{server}/v1/chat/completions", json=body(max_tokens=40), timeout=60)
    for client in clients:
        client.join()
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["code"] == "server_busy"
    assert "1 requests are already waiting for tiny" in refused.json()["error"]["message"]
    assert [r.status_code for r in results] == [200, 200, 200]
    assert all(r.json()["usage"]["completion_tokens"] == 40 for r in results)
    # batched: fewer steps than tokens (2 rows a step while two ran)
    rows, steps = metric(server, "pml_decode_rows_total", model="tiny"), metric(server, "pml_decode_steps_total", model="tiny")
    assert rows == 3 * 39 and steps < rows
    assert metric(server, "pml_requests_total", route="/v1/chat/completions", status="503") == 1
    assert metric(server, "pml_requests_total", route="/v1/chat/completions", status="200") == 3


def test_health_is_503_while_a_model_loads_then_200(stored_tiny, monkeypatch):
    import pimpmyllama.serving.engines as engines

    real = engines.load_build_engine
    release = threading.Event()

    def slow_load(build):
        release.wait(30)
        return real(build)

    monkeypatch.setattr(engines, "load_build_engine", slow_load)
    url, stop = serve_in_thread(create_app(preload=("tiny",)))
    try:
        loading = httpx.get(f"{url}/health")
        assert loading.status_code == 503 and loading.json() == {"status": "loading"}
        release.set()
        deadline = time.perf_counter() + 30
        while httpx.get(f"{url}/health").status_code != 200:
            assert time.perf_counter() < deadline
            time.sleep(0.05)
        assert httpx.get(f"{url}/health").json() == {"status": "ok"}
    finally:
        release.set()
        stop()
