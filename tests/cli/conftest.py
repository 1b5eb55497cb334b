import pytest
from typer.testing import CliRunner

from fakes import FakeEngine, patch_load_engine


@pytest.fixture
def fake_engine(monkeypatch, tiny_model, pml_home):
    """Every command that loads a model gets this fake; queue replies on it."""
    return patch_load_engine(monkeypatch, FakeEngine(tiny_model))


@pytest.fixture
def run():
    from pimpmyllama.cli.main import app

    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(app, list(args), input=input)

    return invoke
