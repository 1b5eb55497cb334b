"""GET /v1/models and /health."""

from fastapi.testclient import TestClient

from pimpmyllama.serving.app import create_app


def test_health():
    response = TestClient(create_app()).get("/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_lists_builds_models_and_adapters_on_their_base(store_world):
    body = TestClient(create_app()).get("/v1/models").json()
    assert body["object"] == "list"
    assert [(m["id"], m["kind"]) for m in body["data"]] == [
        ("b1", "build"), ("tiny", "model"), ("tuned", "model"), ("smollm2-135m-instruct", "model"),
        ("tiny+form", "model+adapter")]
    assert {(m["object"], m["owned_by"]) for m in body["data"]} == {("model", "pimpmyllama")}
