import pytest
from typer.testing import CliRunner

from fakes import FakeEngine


@pytest.fixture
def fake_engine(monkeypatch, tiny_model, pml_home):
    """Every command that loads a model gets this fake; queue replies on it."""
    engine = FakeEngine(tiny_model)
    import pimpmyllama.chat.opening as opening

    monkeypatch.setattr(opening, "load_engine", lambda ref, progress=None, adapter=None, precision=None: engine)
    return engine


@pytest.fixture
def run():
    from pimpmyllama.cli.main import app

    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(app, list(args), input=input)

    return invoke
