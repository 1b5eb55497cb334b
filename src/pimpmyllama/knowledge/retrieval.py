"""Retrieval: dense, keyword or hybrid (reciprocal rank fusion), with filters applied
before ranking and optional MMR for diversity."""

from dataclasses import dataclass

import numpy as np

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.knowledge.store import KnowledgeBase, KnowledgeStore, StoredChunk
from pimpmyllama.text import check_text

MODES = ("hybrid", "dense", "keyword")
RRF_K = 60  # the constant of Cormack et al.'s reciprocal rank fusion (Open WebUI uses 60 too)


@dataclass
class Hit:
    chunk: StoredChunk
    score: float  # the fused score (hybrid), cosine similarity (dense) or keyword score
    similarity: float | None = None  # cosine similarity to the query (None in keyword mode)
    dense_rank: int | None = None
    keyword_rank: int | None = None


def reciprocal_rank_fusion(rankings: list[list[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Σ 1/(k + rank) over the rankings each id appears in (ranks from 1), best first."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def maximal_marginal_relevance(query: np.ndarray, candidates: dict[int, np.ndarray], order: list[int], k: int,
                               lam: float = 0.5) -> list[int]:
    """Pick k ids that are relevant to the query yet unlike those already picked."""
    chosen: list[int] = []
    pool = [i for i in order if i in candidates]
    while pool and len(chosen) < k:
        def gain(i: int) -> float:
            redundancy = max((float(candidates[i] @ candidates[j]) for j in chosen), default=0.0)
            return lam * float(candidates[i] @ query) - (1 - lam) * redundancy

        best = max(pool, key=gain)
        chosen.append(best)
        pool.remove(best)
    return chosen


def check_embedder(kb: KnowledgeBase, embedder) -> None:
    if embedder.name != kb.embedder or embedder.dim != kb.dim:
        raise InvalidInputError(
            f"knowledge base {kb.name!r} was indexed with {kb.embedder} ({kb.dim} dims), not {embedder.name} "
            f"({embedder.dim} dims); re-index it with `pml kb reindex {kb.name} --embedder {embedder.name}`"
        )


def retrieve(store: KnowledgeStore, kb: KnowledgeBase, embedder, query: str, k: int = 4, *, mode: str = "hybrid",
             filters: dict[str, str] | None = None, mmr: bool = False, candidates: int | None = None) -> list[Hit]:
    if mode not in MODES:
        raise InvalidInputError(f"unknown retrieval mode {mode!r} (known: {', '.join(MODES)})")
    if k < 1:
        raise InvalidInputError("k must be at least 1")
    check_text(query, "the query")
    check_embedder(kb, embedder)
    among = store.filter_chunk_ids(kb, filters or {})
    pool = candidates or max(4 * k, 20)
    dense, keyword = [], []
    query_vector = None
    if mode in ("hybrid", "dense"):
        query_vector = embedder.encode([query])[0]
        dense = store.dense_search(kb, query_vector, pool, among)
    if mode in ("hybrid", "keyword"):
        keyword = store.keyword_search(kb, query, pool, among)
    similarity = dict(dense)
    dense_rank = {i: r for r, (i, _) in enumerate(dense, start=1)}
    keyword_rank = {i: r for r, (i, _) in enumerate(keyword, start=1)}
    if mode == "dense":
        ranked = dense
    elif mode == "keyword":
        ranked = keyword
    else:
        ranked = reciprocal_rank_fusion([[i for i, _ in dense], [i for i, _ in keyword]])
    if mmr and query_vector is not None:
        vectors = store.vectors(kb, [i for i, _ in ranked])
        picked = maximal_marginal_relevance(query_vector, vectors, [i for i, _ in ranked], k)
        scores = dict(ranked)
        ranked = [(i, scores[i]) for i in picked]
    ranked = ranked[:k]
    unknown = [i for i, _ in ranked if i not in similarity]
    if unknown and query_vector is not None:
        # A keyword hit outside the dense candidates: its similarity, computed exactly.
        for i, vector in store.vectors(kb, unknown).items():
            similarity[i] = float(vector @ query_vector / (np.linalg.norm(vector) * np.linalg.norm(query_vector)))
    chunks = {c.id: c for c in store.chunks([i for i, _ in ranked])}
    return [
        Hit(chunks[i], score, similarity.get(i), dense_rank.get(i), keyword_rank.get(i))
        for i, score in ranked
        if i in chunks
    ]
