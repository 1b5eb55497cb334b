import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tiny import make_tiny_model  # noqa: E402


@pytest.fixture(autouse=True)
def _no_background_service(monkeypatch):
    """Commands answer in-process in tests (the service's own tests turn it back on):
    a test never leaves a background process behind."""
    monkeypatch.setenv("PML_NO_SERVICE", "1")


@pytest.fixture(scope="session", autouse=True)
def _not_the_users_home(tmp_path_factory):
    """The run's own PML_HOME, from its start (a fixture or a test may set another, for
    its own scope): nothing a test loads or prepares lands in the user's ~/.pimpmyllama."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PML_HOME", str(tmp_path_factory.mktemp("pml-session-home")))
        yield


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


@pytest.fixture
def store_world(stored_tiny, tiny_model, tmp_path):
    """A store with a model 'tiny', a second model 'tuned', an adapter 'form' (tuned's
    difference from tiny), a build 'b1' of tiny and a build file."""
    from tiny import make_tiny_model

    from pimpmyllama.merging.lora import extract_lora
    from pimpmyllama.models.store import ModelStore
    from pimpmyllama.prompting.build import Build
    from pimpmyllama.prompting.builds import BuildStore

    ModelStore().import_model(make_tiny_model(tmp_path / "tuned-src", seed=7), "tuned")
    extract_lora("tuned", "tiny", 2, "form")
    BuildStore().save("b1", Build.model_validate({"from": "tiny", "system": "Be brief."}))
    build_file = tmp_path / "b2.yml"
    build_file.write_text(f"from: {tiny_model}\nsystem: Hi\n")
    return {"tiny_folder": tiny_model, "build_file": build_file}
