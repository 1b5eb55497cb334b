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


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """A real PostgreSQL 16 + pgvector server from the pgserver wheel, for the session."""
    import os

    os.environ.setdefault("XDG_RUNTIME_DIR", str(tmp_path_factory.mktemp("runtime")))
    import pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    yield server
    server.cleanup()


@pytest.fixture
def pg_url(pg_server) -> str:
    """A fresh, empty database on the test server."""
    import uuid

    name = f"t_{uuid.uuid4().hex[:12]}"
    pg_server.psql(f"CREATE DATABASE {name};")
    return pg_server.get_uri().replace("/postgres?", f"/{name}?", 1)


@pytest.fixture(params=["sqlite", "postgres"])
def db_target(request, tmp_path):
    """Each store test runs twice: on SQLite and on PostgreSQL, same assertions."""
    if request.param == "sqlite":
        return tmp_path / "pml.db"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def db(db_target):
    from pimpmyllama.storage.db import open_database

    database = open_database(db_target)
    yield database
    database.close()
