"""What a turn looks up before it is packed: knowledge passages and recalled memories."""

from pathlib import PurePath

from pimpmyllama.knowledge.embedders import load_embedder
from pimpmyllama.knowledge.retrieval import reciprocal_rank_fusion, retrieve
from pimpmyllama.knowledge.store import KnowledgeStore
from pimpmyllama.memory.recall import MemoryStore
from pimpmyllama.memory.sessions import Session
from pimpmyllama.prompting.build import Build
from pimpmyllama.prompting.packer import Passage


def knowledge_passages(store: KnowledgeStore, build: Build, message: str) -> list[Passage]:
    """The best passages of the build's knowledge bases, numbered [1], [2], ... for citing;
    with `retrieval.min_similarity`, only those at least that similar to the message, and
    with `retrieval.margin`, only those within that much of the most similar one."""
    r = build.retrieval
    hits_by_id, rankings = {}, []
    for name in build.knowledge:
        kb = store.get(name)
        hits = retrieve(store, kb, load_embedder(kb.embedder), message, r.top_k, mode=r.mode, mmr=r.mmr)
        if r.min_similarity is not None:
            hits = [h for h in hits if h.similarity is not None and h.similarity >= r.min_similarity]
        rankings.append([(name, h.chunk.id) for h in hits])
        hits_by_id.update({(name, h.chunk.id): h for h in hits})
    ranked = rankings[0] if len(rankings) == 1 else [key for key, _ in reciprocal_rank_fusion(rankings)]
    if r.margin is not None:
        best = max((h.similarity for h in hits_by_id.values() if h.similarity is not None), default=None)
        if best is not None:
            ranked = [k for k in ranked if (s := hits_by_id[k].similarity) is not None and s >= best - r.margin]
    passages = []
    for number, key in enumerate(ranked[: r.top_k], start=1):
        hit = hits_by_id[key]
        c = hit.chunk
        passages.append(
            Passage(
                text=c.text,
                label=f"[{number}] ({PurePath(c.source).name})",
                score=hit.similarity if hit.similarity is not None else hit.score,
                source=f"{c.source}#{c.position}" + (f" p.{c.page}" if c.page else ""),
                document=c.source,
                chunk=c.position,
                page=c.page,
            )
        )
    return passages


def recalled_passages(memory: MemoryStore, session: Session, build: Build, message: str) -> list[Passage]:
    memories = memory.recall(session, message, build.memory.recall_k)
    return [Passage(m.text, "", m.similarity, f"turn #{m.turn_idx}") for m in memories]
