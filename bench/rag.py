"""Knowledge-base benchmarks, each against a named baseline in the same run.

1. Ingestion throughput (`pml kb add` machinery: load, chunk, embed, store) against
   the embedder's raw encode speed on the same chunk texts. Goal: >= 0.8x.
2. Query latency p50/p95 of the SQLite (sqlite-vec + FTS5) and PostgreSQL (pgvector
   HNSW + tsvector) stores at 10k and 100k chunks, dense and hybrid, against exact
   numpy search over an in-memory matrix; and recall@10 of each store's vector
   search against that exact search. Goal: recall >= 0.95.

The corpus is the docstrings of the standard library and installed packages
(bench/corpus.py builds it); embeddings are cached in bench/out/ (embedding 100k
passages takes about 20 minutes on 2 cores, once).

    python bench/rag.py [--sizes 10000,100000] [--modules 150] [--queries 200]
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

sys_path = Path(__file__).parent
import sys  # noqa: E402

sys.path.insert(0, str(sys_path))
from corpus import OUT, cached_passages, write_module_documents  # noqa: E402

from pimpmyllama.knowledge.chunking import Chunk, chunk_blocks  # noqa: E402
from pimpmyllama.knowledge.embedders import load_embedder  # noqa: E402
from pimpmyllama.knowledge.ingest import ingest  # noqa: E402
from pimpmyllama.knowledge.loaders import load_document  # noqa: E402
from pimpmyllama.knowledge.retrieval import reciprocal_rank_fusion  # noqa: E402
from pimpmyllama.knowledge.store import KnowledgeStore  # noqa: E402
from pimpmyllama.storage.db import open_database  # noqa: E402


def percentile(values, q):
    return float(np.percentile(np.array(values) * 1000, q))


def bench_ingestion(embedder, modules: int) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        files = write_module_documents(Path(tmp) / "docs", modules)
        store = KnowledgeStore(open_database(Path(tmp) / "pml.db"))
        kb = store.create("bench", embedder.name, embedder.dim, 200, 40)
        embedder.encode(["warm up"] * 8)
        report = ingest(store, kb, embedder, [str(f) for f in files])
        texts = []
        for f in files:
            doc = load_document(f)
            texts += [c.embedding_text() for c in chunk_blocks(doc.blocks, embedder.count_tokens, 200, 40)]
        t0 = time.perf_counter()
        embedder.encode(texts)
        raw = time.perf_counter() - t0
        assert len(texts) == report.chunks
        return report.chunks / report.seconds, len(texts) / raw, report.chunks


def embeddings(embedder, passages: list[dict]) -> np.ndarray:
    path = OUT / f"embeddings_{len(passages)}.npy"
    if path.exists():
        return np.load(path)
    for other in sorted(OUT.glob("embeddings_*.npy"), key=lambda p: -int(p.stem.split("_")[1])):
        cached = np.load(other)
        if len(cached) >= len(passages):
            return cached[: len(passages)]
    vectors = np.zeros((len(passages), embedder.dim), dtype=np.float32)
    step = 2000
    t0 = time.perf_counter()
    for start in range(0, len(passages), step):
        vectors[start : start + step] = embedder.encode([p["text"] for p in passages[start : start + step]], 64)
        done = min(start + step, len(passages))
        print(f"  embedded {done}/{len(passages)} passages ({done / (time.perf_counter() - t0):.0f}/s)", flush=True)
    np.save(path, vectors)
    return vectors


def fill(store: KnowledgeStore, embedder, passages, vectors, n: int):
    kb = store.create(f"bench{n}", embedder.name, embedder.dim, 200, 40)
    group = 1000  # one "document" per 1000 passages
    for start in range(0, n, group):
        chunks = [Chunk(i, p["text"], None, None, 0) for i, p in enumerate(passages[start : start + group])]
        store.put_document(kb, f"corpus/{start:06d}", str(start), None, 0, chunks, vectors[start : start + group])
    return kb


def bench_store(store, kb, vectors, queries, query_vectors, k=10):
    ids = [r["id"] for r in store.db.query("SELECT id FROM chunks WHERE kb_id = ? ORDER BY id", (kb.id,))]
    matrix = vectors[: len(ids)]
    dense_t, hybrid_t, exact_t, recalls = [], [], [], []
    for text, q in zip(queries, query_vectors):
        t0 = time.perf_counter()
        dense = store.dense_search(kb, q, k)
        dense_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        pool = store.dense_search(kb, q, 40)
        keyword = store.keyword_search(kb, text, 40)
        reciprocal_rank_fusion([[i for i, _ in pool], [i for i, _ in keyword]])[:k]
        hybrid_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        scores = matrix @ q
        top = np.argpartition(-scores, k)[:k]
        exact = {ids[i] for i in top}
        exact_t.append(time.perf_counter() - t0)
        recalls.append(len(exact & {i for i, _ in dense}) / k)
    return {
        "dense_p50": percentile(dense_t, 50), "dense_p95": percentile(dense_t, 95),
        "hybrid_p50": percentile(hybrid_t, 50), "hybrid_p95": percentile(hybrid_t, 95),
        "exact_p50": percentile(exact_t, 50), "recall": float(np.mean(recalls)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--modules", type=int, default=150)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--skip-ingestion", action="store_true")
    args = parser.parse_args()
    embedder = load_embedder()

    if not args.skip_ingestion:
        ours, raw, chunks = bench_ingestion(embedder, args.modules)
        print(f"\ningestion of {args.modules} standard-library modules ({chunks} chunks of <= 200 tokens)")
        print(f"{'':28} {'chunks/s':>10}")
        print(f"{'raw embedder.encode':28} {raw:>10.1f}")
        print(f"{'pml kb add (ingest)':28} {ours:>10.1f}   ratio {ours / raw:.2f}x of raw (goal >= 0.8)")

    sizes = [int(s) for s in args.sizes.split(",")]
    largest = max(sizes)
    passages = cached_passages(largest + args.queries)
    vectors = embeddings(embedder, passages)
    queries = [p["text"] for p in passages[largest : largest + args.queries]]
    query_vectors = vectors[largest : largest + args.queries]

    import pgserver

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        server = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="stop")
        try:
            for engine in ("sqlite", "postgres"):
                for n in sizes:
                    target = Path(tmp) / f"{n}.db" if engine == "sqlite" else server.get_uri()
                    db = open_database(target)
                    store = KnowledgeStore(db)
                    t0 = time.perf_counter()
                    kb = fill(store, embedder, passages, vectors, n)
                    load = time.perf_counter() - t0
                    result = bench_store(store, kb, vectors, queries, query_vectors)
                    rows.append((engine, n, load, result))
                    print(f"  {engine} {n}: loaded in {load:.1f}s", flush=True)
                    db.close()
        finally:
            server.cleanup()

    print(f"\nquery latency (ms) over {args.queries} queries, k=10; baseline: exact numpy search in memory")
    header = (f"{'store':<9} {'chunks':>7} {'dense p50':>10} {'dense p95':>10} {'hybrid p50':>11} {'hybrid p95':>11} "
              f"{'numpy p50':>10} {'dense/numpy':>12} {'recall@10':>10}")
    print(header)
    print("-" * len(header))
    for engine, n, _, r in rows:
        print(f"{engine:<9} {n:>7} {r['dense_p50']:>10.2f} {r['dense_p95']:>10.2f} {r['hybrid_p50']:>11.2f} "
              f"{r['hybrid_p95']:>11.2f} {r['exact_p50']:>10.2f} {r['dense_p50'] / r['exact_p50']:>11.1f}x "
              f"{r['recall']:>10.3f}")


if __name__ == "__main__":
    main()
