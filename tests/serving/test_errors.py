"""Errors in OpenAI's shape, with the status a client expects and our message."""

import pytest
from serve_client import chat


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def test_an_unsupported_field_is_named(client, fake_engine):
    error = error_of(chat(client, logit_bias={"1": 5}), 400)
    assert error == {"message": "unsupported field 'logit_bias'", "type": "invalid_request_error",
                     "param": "logit_bias", "code": "unsupported_parameter"}
    error = error_of(chat(client, stream=True, stream_options={"continuous_usage_stats": True}), 400)
    assert error["param"] == "stream_options.continuous_usage_stats"
    assert fake_engine.prompts == []  # nothing was generated


@pytest.mark.parametrize("field, value", [("max_tokens", -1), ("temperature", 3), ("top_p", 0), ("n", 2),
                                          ("stop", ["a", "b", "c", "d", "e"])])
def test_a_bad_value_is_named(client, field, value):
    error = error_of(chat(client, **{field: value}), 400)
    assert error["param"] == field
    assert error["code"] == "invalid_value"


def test_malformed_json(client):
    response = client.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert error_of(response, 400)["message"] == "the request body is not valid JSON"


def test_an_unknown_model_is_404(client):
    error = error_of(chat(client, model="nope"), 404)
    assert error["param"] == "model" and error["code"] == "model_not_found"
    assert "unknown build or model 'nope'" in error["message"]


def test_a_file_path_is_not_a_model_here(client, tiny_model):
    error = error_of(chat(client, model=str(tiny_model)), 400)
    assert error["param"] == "model"
    assert "by name, not files" in error["message"]


def test_a_prompt_that_does_not_fit_gives_both_numbers(client, fake_engine):
    # The tiny model's context is 4096 in the fake; num_ctx 2048 by default.
    error = error_of(chat(client, "word " * 3000), 400)
    assert error["code"] == "context_length_exceeded"
    needed = int(error["message"].split("the prompt needs ")[1].split(" ")[0])
    assert needed > 3000
    assert "num_ctx 2048" in error["message"]
    assert fake_engine.prompts == []


def test_history_that_does_not_fit_is_refused_not_cut(client, fake_engine):
    long = "word " * 700
    messages = [{"role": "user", "content": long}, {"role": "assistant", "content": long},
                {"role": "user", "content": "and now?"}]
    error = error_of(client.post("/v1/chat/completions", json={"model": "tiny", "messages": messages}), 400)
    assert error["code"] == "context_length_exceeded"
    assert error["message"].startswith("the messages need ")
    needed = int(error["message"].removeprefix("the messages need ").split(" ")[0])
    assert needed > 1400
    assert "context size 2048" in error["message"]
    assert "the oldest 1 of 1 earlier turns would be left out" in error["message"]
    assert fake_engine.prompts == []


def test_messages_must_end_with_the_user_and_alternate(client):
    last = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    assert error_of(client.post("/v1/chat/completions", json={"model": "tiny", "messages": last}), 400)["message"] \
        == "the last message must be the user's (it is the one answered)"
    twice = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    error = error_of(client.post("/v1/chat/completions", json={"model": "tiny", "messages": twice}), 400)
    assert error["param"] == "messages.1.role"


def test_an_unknown_route_is_shaped_too(client):
    assert error_of(client.get("/v1/nothing"), 404)["message"] == "no route GET /v1/nothing"
