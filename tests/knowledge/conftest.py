import pytest

from seed_data import write_seed


@pytest.fixture(scope="session")
def embedder():
    from pimpmyllama.knowledge.embedders import load_embedder

    return load_embedder()


@pytest.fixture
def seed_dir(tmp_path):
    return write_seed(tmp_path / "seed")


@pytest.fixture
def kstore(db):
    from pimpmyllama.knowledge.store import KnowledgeStore

    return KnowledgeStore(db)


@pytest.fixture
def seed_kb(kstore, embedder, seed_dir):
    from pimpmyllama.knowledge.ingest import ingest

    kb = kstore.create("seed", embedder.name, embedder.dim, 200, 40)
    report = ingest(kstore, kb, embedder, [str(seed_dir)])
    assert len(report.added) == 4
    return kb
