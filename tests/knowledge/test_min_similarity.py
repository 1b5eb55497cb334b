"""retrieval.min_similarity: a passage less similar to the message is not offered
(the real bundled embedder, on the seed's four sentences)."""

import pytest

from seed_data import QUERY, SEED
from pimpmyllama.chat.sources import knowledge_passages
from pimpmyllama.knowledge.retrieval import retrieve
from pimpmyllama.prompting.build import Build


@pytest.fixture
def db_target(tmp_path):
    return tmp_path / "pml.db"  # one engine is enough here: this is about the filter, not the store


def build(**retrieval) -> Build:
    return Build.model_validate({"knowledge": ["seed"], "retrieval": {"margin": None, **retrieval}})


def test_passages_under_the_threshold_are_not_offered(kstore, seed_kb, embedder):
    similarities = {h.chunk.text: h.similarity for h in retrieve(kstore, seed_kb, embedder, QUERY, 4, mode="dense")}
    best, second = sorted(similarities.values(), reverse=True)[:2]
    assert similarities[SEED["poste.txt"]] == best and best - second > 0.1
    everything = knowledge_passages(kstore, build(), QUERY)
    assert len(everything) == 4 and everything[0].text == SEED["poste.txt"]
    kept = knowledge_passages(kstore, build(min_similarity=(best + second) / 2), QUERY)
    assert [(p.label, p.text) for p in kept] == [("[1] (poste.txt)", SEED["poste.txt"])]
    assert kept[0].score == pytest.approx(best)
    assert knowledge_passages(kstore, build(min_similarity=best + 0.01), QUERY) == []
    dense = knowledge_passages(kstore, build(mode="dense", min_similarity=second - 0.01), QUERY)
    assert [p.label for p in dense] == ["[1] (poste.txt)", "[2] (coiffeur.txt)"]


def test_hybrid_hits_found_by_keywords_alone_have_their_similarity(kstore, seed_kb, embedder):
    # One dense candidate only: of the two keyword hits, one is found by keywords alone.
    hits = retrieve(kstore, seed_kb, embedder, "poste coiffeur", 4, mode="hybrid", candidates=1)
    assert len(hits) == 2 and [h.dense_rank is None for h in hits].count(True) == 1
    assert all(h.similarity is not None for h in hits)
    vectors = kstore.vectors(seed_kb, [h.chunk.id for h in hits])
    query = embedder.encode(["poste coiffeur"])[0]
    for h in hits:
        assert h.similarity == pytest.approx(float(vectors[h.chunk.id] @ query), abs=1e-4)


def test_a_margin_keeps_the_passages_close_to_the_best_one(kstore, seed_kb, embedder):
    ranked = sorted((h.similarity for h in retrieve(kstore, seed_kb, embedder, QUERY, 4, mode="dense")), reverse=True)
    best, second, third = ranked[:3]
    kept = knowledge_passages(kstore, build(margin=(best - second) / 2), QUERY)
    assert [p.label for p in kept] == ["[1] (poste.txt)"]
    kept = knowledge_passages(kstore, build(margin=best - (second + third) / 2), QUERY)
    assert len(kept) == 2 and kept[0].text == SEED["poste.txt"] and kept[1].score == pytest.approx(second)
    assert len(knowledge_passages(kstore, build(margin=2), QUERY)) == 4
    default = Build.model_validate({"knowledge": ["seed"]})  # margin 0.1: the other sentences are far below
    assert default.retrieval.margin == 0.1 and best - second > 0.1
    assert [p.text for p in knowledge_passages(kstore, default, QUERY)] == [SEED["poste.txt"]]
    keyword = Build.model_validate({"knowledge": ["seed"], "retrieval": {"mode": "keyword"}})
    assert keyword.retrieval.margin == 0.1  # unused: keyword hits have no similarity
    assert knowledge_passages(kstore, keyword, "poste")[0].text == SEED["poste.txt"]
