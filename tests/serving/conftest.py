import pytest
from fastapi.testclient import TestClient

from fakes import FakeEngine, patch_load_engine


@pytest.fixture
def fake_engine(monkeypatch, tiny_model, stored_tiny):
    """Every model the server loads is this fake; queue replies on it."""
    return patch_load_engine(monkeypatch, FakeEngine(tiny_model))


@pytest.fixture
def client(fake_engine):
    from pimpmyllama.serving.app import create_app

    with TestClient(create_app()) as test_client:
        yield test_client

