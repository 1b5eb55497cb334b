"""The `pml` extras through the official `openai` client: sent with `extra_body`,
read back from `model_extra`, refused as the client's BadRequestError."""

import openai
import pytest


@pytest.fixture
def oai(client):
    # TestClient is an httpx.Client: the openai client talks to the app in-process.
    return openai.OpenAI(base_url="http://testserver/v1", api_key="unused", http_client=client, max_retries=0)


def test_extras_go_in_extra_body_and_come_back_in_model_extra(oai, fake_engine):
    fake_engine.replies.extend(["Hello there", "Again here"])
    messages = [{"role": "user", "content": "Hi"}]
    completion = oai.chat.completions.create(model="tiny", messages=messages, extra_body={"pml": {"session": "desk"}})
    assert completion.choices[0].message.content == "Hello there"
    assert (completion.model_extra["pml"]["session"], completion.model_extra["pml"]["turn"]) == ("desk", 0)
    chunks = list(oai.chat.completions.create(model="tiny", messages=messages, stream=True,
                                              extra_body={"pml": {"session": "desk"}}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Again here"
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.model_extra["pml"]["turn"] == 1
    assert last.model_extra["pml"]["context"]["kept_turns"] == [0]


def test_an_unknown_extra_is_the_clients_bad_request(oai):
    with pytest.raises(openai.BadRequestError) as refused:
        oai.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "Hi"}],
                                    extra_body={"pml": {"mirostat": 2}})
    assert refused.value.status_code == 400
    assert refused.value.body["param"] == "pml"
    assert refused.value.body["message"].startswith("pml: unsupported keys 'mirostat' (known: session, ")
