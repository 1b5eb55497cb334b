"""Bad input against a real server: each is a 4xx naming the problem, and the server
answers the next good request as if nothing happened; a request's `timeout` ends its
reply (408), waiting or generating."""

import json

import httpx
import pytest
from serve_client import serve_in_thread, wait_until_healthy

from pimpmyllama.serving.app import create_app

KEY = "k3y"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def server(stored_tiny, slow_model):
    url, stop = serve_in_thread(create_app(api_key=KEY, max_batch=1, preload=("tiny",), max_body_bytes=1_000_000))
    wait_until_healthy(url, seconds=300)
    yield url
    stop()


def post(url, body=None, *, content=None, headers=AUTH, path="/v1/chat/completions"):
    return httpx.post(f"{url}{path}", json=body, content=content, headers=headers, timeout=60)


def good(**fields) -> dict:
    # ignore_eos: a reply's length is max_tokens (a random tiny model may sample its end-of-text early)
    return {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3, "ignore_eos": True,
            **fields}


def error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    return response.json()["error"]


def test_bad_input_is_a_4xx_naming_it_and_the_server_is_unharmed(server):
    assert error(post(server, content=b'{"model": ', headers={**AUTH, "content-type": "application/json"}),
                 400)["message"] == "the request body is not valid JSON"
    big = json.dumps(good(messages=[{"role": "user", "content": "x" * 10_000_000}])).encode()
    too_large = error(post(server, content=big, headers={**AUTH, "content-type": "application/json"}), 413)
    assert too_large["message"] == "the request body is larger than the server's 1 MB limit (pml serve --max-body-mb)"

    def chunked():  # no Content-Length: refused once the bytes pass the limit
        yield big[:600_000]
        yield big[600_000:1_200_000]

    assert error(post(server, content=chunked(), headers={**AUTH, "content-type": "application/json"}),
                 413)["code"] == "request_too_large"
    assert error(post(server, good(mirostat=2)), 400)["message"] == "unsupported field 'mirostat'"
    negative = error(post(server, good(max_tokens=-1)), 400)
    assert negative["param"] == "max_tokens" and "greater than or equal to 1" in negative["message"]
    assert error(post(server, good(temperature="hot")), 400)["param"] == "temperature"
    assert error(post(server, good(messages="Hi")), 400)["param"] == "messages"
    assert error(post(server, good(), headers={}), 401)["message"].startswith("missing or wrong API key")
    assert error(post(server, good(), headers={"Authorization": "Bearer nope"}), 401)["code"] == "invalid_api_key"
    reply = post(server, good())
    assert reply.status_code == 200 and reply.json()["usage"]["completion_tokens"] == 3


def test_a_timeout_ends_the_reply_with_408(server):
    # 20 ms a step: 200 tokens take 4 s; the timeout is 0.5 s
    late = error(post(server, good(max_tokens=200, timeout=0.5)), 408)
    assert late["param"] == "timeout" and late["message"].startswith("the request's timeout passed after ")
    generated = int(late["message"].split("after ")[1].split()[0])
    assert 5 <= generated < 60
    with httpx.stream("POST", f"{server}/v1/chat/completions", headers=AUTH, timeout=60,
                      json=good(max_tokens=200, timeout=0.5, stream=True)) as response:
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["error"]["code"] == "timeout"
    assert post(server, good()).status_code == 200
