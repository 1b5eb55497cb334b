"""Knowledge bases on SQLite and PostgreSQL (`db` runs each test on both), same assertions."""

import numpy as np
import pytest

from seed_data import QUERY, SEED
from pimpmyllama.errors import InvalidInputError, NotFoundError
from pimpmyllama.knowledge.ingest import ingest
from pimpmyllama.knowledge.retrieval import retrieve


def names(hits):
    return [h.chunk.source.rsplit("/", 1)[-1] for h in hits]


def vector_rows(kstore, kb) -> int:
    return kstore.db.query_one(f"SELECT COUNT(*) AS n FROM vec_chunks_{kb.dim} WHERE part = ?", (kb.id,))["n"]


def test_the_seed_sentences_rank_in_order(kstore, seed_kb, embedder):
    expected = ["poste.txt", "coiffeur.txt", "piscine.txt", "raviolis.txt"]
    assert names(retrieve(kstore, seed_kb, embedder, QUERY, 4, mode="dense")) == expected
    hits = retrieve(kstore, seed_kb, embedder, QUERY, 4, mode="hybrid")
    assert names(hits)[0] == "poste.txt"
    assert hits[0].similarity == pytest.approx(0.838, abs=0.01)
    assert hits[0].chunk.text == SEED["poste.txt"] and hits[0].chunk.position == 0


def test_keyword_search_finds_rare_words(kstore, seed_kb, embedder):
    hits = retrieve(kstore, seed_kb, embedder, "raviolis", 2, mode="keyword")
    assert names(hits)[0] == "raviolis.txt"
    assert retrieve(kstore, seed_kb, embedder, "zzzz", 2, mode="keyword") == []


def test_adding_again_is_a_no_op_and_a_change_replaces_the_chunks(kstore, seed_kb, embedder, seed_dir):
    again = ingest(kstore, seed_kb, embedder, [str(seed_dir)])
    assert (len(again.added), len(again.updated), len(again.unchanged), again.chunks) == (0, 0, 4, 0)
    (seed_dir / "poste.txt").write_text("La poste ouvre à 8h.\n\nLe samedi elle ouvre à 10h.", encoding="utf-8")
    changed = ingest(kstore, seed_kb, embedder, [str(seed_dir / "poste.txt")])
    assert changed.updated == [str((seed_dir / "poste.txt").resolve())]
    stats = kstore.stats(seed_kb)
    assert (stats.documents, stats.chunks) == (4, 4)
    texts = [c.text for c in kstore.all_chunks(seed_kb)]
    assert "Le bureau de poste ouvre à 9h." not in texts
    assert any("8h" in t for t in texts)
    assert vector_rows(kstore, seed_kb) == 4


def test_removing_a_document_removes_its_chunks_and_vectors(kstore, seed_kb, embedder, seed_dir):
    assert kstore.remove_documents(seed_kb, "poste.txt") == [str((seed_dir / "poste.txt").resolve())]
    assert kstore.stats(seed_kb).chunks == 3 and vector_rows(kstore, seed_kb) == 3
    assert "poste.txt" not in names(retrieve(kstore, seed_kb, embedder, QUERY, 4))
    kstore.remove("seed")
    assert kstore.db.query("SELECT * FROM chunks") == [] and kstore.db.query("SELECT * FROM documents") == []
    with pytest.raises(NotFoundError, match="unknown knowledge base 'seed'"):
        kstore.get("seed")


def test_filters_apply_before_ranking(kstore, seed_kb, embedder):
    # The nearest passage is excluded by the filter; k results still come back.
    hits = retrieve(kstore, seed_kb, embedder, QUERY, 2, mode="dense", filters={"source": "*[fn]*.txt"})
    assert names(hits) == ["coiffeur.txt", "piscine.txt"]
    hits = retrieve(kstore, seed_kb, embedder, QUERY, 3, mode="hybrid", filters={"source": "raviolis.txt"})
    assert names(hits) == ["raviolis.txt"]
    assert retrieve(kstore, seed_kb, embedder, QUERY, 3, filters={"source": "nothing*"}) == []


def test_bad_filters_and_another_embedder_are_errors(kstore, seed_kb, embedder):
    from pimpmyllama.knowledge.store import parse_filters

    with pytest.raises(InvalidInputError, match="unknown filter field 'author' \\(known: source, title, heading, page\\)"):
        parse_filters(["author=me"])
    with pytest.raises(InvalidInputError, match="is not FIELD=VALUE"):
        parse_filters(["source"])

    class Other:
        name, dim = "/models/e5-small", 384

    with pytest.raises(InvalidInputError, match="re-index it with `pml kb reindex seed --embedder /models/e5-small`"):
        retrieve(kstore, seed_kb, Other(), QUERY, 2)


def test_mmr_prefers_diverse_passages():
    from pimpmyllama.knowledge.retrieval import maximal_marginal_relevance

    candidates = {1: np.array([1.0, 0.0]), 2: np.array([0.99, 0.141]), 3: np.array([0.6, 0.8])}
    candidates = {i: v / np.linalg.norm(v) for i, v in candidates.items()}
    query = np.array([1.0, 0.0])
    # lam 0.3: candidate 2 scores 0.3*0.99 - 0.7*0.99 = -0.40, candidate 3 0.3*0.6 - 0.7*0.6 = -0.24
    assert maximal_marginal_relevance(query, candidates, [1, 2, 3], 2, lam=0.3) == [1, 3]
    assert maximal_marginal_relevance(query, candidates, [1, 2, 3], 2, lam=1.0) == [1, 2]


def test_reciprocal_rank_fusion_by_hand():
    from pimpmyllama.knowledge.retrieval import reciprocal_rank_fusion

    fused = reciprocal_rank_fusion([[10, 20, 30], [30, 10]])
    assert [i for i, _ in fused] == [10, 30, 20]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[1][1] == pytest.approx(1 / 63 + 1 / 61)


def test_reindex_swaps_every_vector(kstore, seed_kb, embedder):
    chunks = kstore.all_chunks(seed_kb)
    vectors = np.eye(8, dtype=np.float32)[: len(chunks)]
    kb = kstore.replace_embeddings(seed_kb, "toy", 8, [c.id for c in chunks], vectors)
    assert (kb.embedder, kb.dim) == ("toy", 8)
    assert vector_rows(kstore, kb) == 4
    assert kstore.db.query_one(f"SELECT COUNT(*) AS n FROM vec_chunks_{embedder.dim} WHERE part = ?", (kb.id,))["n"] == 0
    assert kstore.dense_search(kb, vectors[2], 1) == [(chunks[2].id, pytest.approx(1.0))]


def test_listings_are_typed_records(kstore, seed_kb, embedder, seed_dir):
    import hashlib

    from pimpmyllama.knowledge.records import KnowledgeBaseStats, KnowledgeBaseSummary

    [summary] = kstore.summaries()
    assert summary == KnowledgeBaseSummary("seed", embedder.name, 200, 40, kstore.get("seed").updated_at, 4, 4)
    sizes = {name: len((text + "\n").encode()) for name, text in SEED.items()}
    tokens = sum(c.tokens for c in kstore.all_chunks(seed_kb))
    assert kstore.stats(seed_kb) == KnowledgeBaseStats(documents=4, bytes=sum(sizes.values()), chunks=4, tokens=tokens)
    documents = kstore.documents(seed_kb)
    assert [(d.source, d.bytes, d.chunk_count, d.title) for d in documents] == [
        (str((seed_dir / name).resolve()), sizes[name], 1, None) for name in sorted(SEED)]
    poste = next(d for d in documents if d.source.endswith("poste.txt"))
    assert poste.content_hash == hashlib.sha256((seed_dir / "poste.txt").read_bytes()).hexdigest()
