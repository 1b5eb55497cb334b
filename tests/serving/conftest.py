import pytest
from fakes import FakeEngine, patch_load_engine
from fastapi.testclient import TestClient


@pytest.fixture
def fake_engine(monkeypatch, tiny_model, stored_tiny):
    """Every model the server loads is this fake; queue replies on it."""
    return patch_load_engine(monkeypatch, FakeEngine(tiny_model))


@pytest.fixture
def client(fake_engine):
    from pimpmyllama.serving.app import create_app

    with TestClient(create_app()) as test_client:
        yield test_client



STEP_SECONDS = 0.02  # with slow_model, each forward pass of the tiny model takes at least this long


@pytest.fixture
def slow_model(monkeypatch):
    """The model's forward passes slowed to a known pace (a reply of n tokens takes n steps)."""
    import time

    from pimpmyllama.generation.llama import LlamaModel

    for name in ("forward", "forward_batch"):
        real = getattr(LlamaModel, name)

        def slowed(self, *args, _real=real, **kwargs):
            time.sleep(STEP_SECONDS)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(LlamaModel, name, slowed)
