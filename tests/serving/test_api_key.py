"""With an API key, every endpoint but /health needs `Authorization: Bearer KEY`."""

import pytest
from fastapi.testclient import TestClient

from pimpmyllama.serving.app import create_app

CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}]}


@pytest.fixture
def keyed(fake_engine):
    with TestClient(create_app(api_key="s3cret")) as client:
        yield client


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"},
                                     {"Authorization": "Basic s3cret"}])
def test_without_the_key_401(keyed, fake_engine, headers):
    for response in (keyed.get("/v1/models", headers=headers),
                     keyed.post("/v1/chat/completions", json=CHAT, headers=headers)):
        assert response.status_code == 401
        assert response.json() == {"error": {
            "message": "missing or wrong API key (send Authorization: Bearer KEY)",
            "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}
    assert fake_engine.prompts == []


def test_with_the_key_200(keyed):
    headers = {"Authorization": "Bearer s3cret"}
    assert keyed.get("/v1/models", headers=headers).status_code == 200
    response = keyed.post("/v1/chat/completions", json=CHAT, headers=headers)
    assert (response.status_code, response.json()["choices"][0]["message"]["content"]) == (200, "ok")


def test_health_needs_no_key(keyed):
    assert keyed.get("/health").status_code == 200


def test_the_key_is_checked_before_the_body(keyed):
    response = keyed.post("/v1/chat/completions", json={**CHAT, "bogus": 1})
    assert response.status_code == 401
