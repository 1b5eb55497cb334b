import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tiny import make_tiny_model  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer Llama (hidden 64, 4 heads, 2 key/value heads, tied embeddings)."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture
def pml_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "pml-home"
    monkeypatch.setenv("PML_HOME", str(home))
    return home


@pytest.fixture
def stored_tiny(pml_home, tiny_model) -> str:
    """The tiny model imported into a fresh store as 'tiny'."""
    from pimpmyllama.models.store import ModelStore

    return ModelStore().import_model(tiny_model, "tiny")


@pytest.fixture(scope="session")
def default_model_home(tmp_path_factory) -> Path:
    """A PML_HOME holding the bundled default model, imported once per test run."""
    from pimpmyllama.models.store import ModelStore

    home = tmp_path_factory.mktemp("pml-default")
    ModelStore(home / "models").ensure_default()
    return home
