"""Knowledge-base benchmarks, each against a named baseline in the same run.

1. Ingestion throughput (`pml kb add` machinery: load, chunk, embed, store, index)
   against the embedder's raw encode speed on the same chunk texts. Goal: >= 0.8x.
   Run with exact search only and with the approximate index kept from the first row
   (PML_ANN_MIN_ROWS=0), so its upkeep is in the measurement.
2. Query latency p50/p95 at each size, dense and hybrid, of SQLite with its
   approximate index beside the database (`sqlite-ann`, the default from
   PML_ANN_MIN_ROWS rows on; forced here at every size), SQLite searched exactly
   (`sqlite-exact`, sqlite-vec) and PostgreSQL (pgvector HNSW + tsvector), against
   exact numpy search over an in-memory matrix; recall@10 of each store's vector
   search against that exact search; and the time to fill each store (chunks and
   vectors given, so it is the store's own cost) next to the embedder's time for the
   same chunks. Goals at 100k / 1M chunks on SQLite: p50 <= 10 / 30 ms, recall >= 0.95.

The corpus is the docstrings of the standard library and installed packages
(bench/corpus.py builds it), embedded by the bundled embedder and cached in blocks of
1000 under --cache (resumable: embedding 100k passages takes about 20 minutes on 2
idle cores). Past the first --real passages, a chunk repeats passage i mod --real
with its vector plus Gaussian noise (sigma --noise per dimension, renormalised).

    python bench/rag.py [--sizes 10000,100000] [--pg-sizes 100000] [--real 100000]
                        [--modules 150] [--rounds 2] [--queries 200] [--cache bench/out]
                        [--stores sqlite-ann,sqlite-exact,postgres]
"""

import argparse
import os
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
from pimpmyllama.storage import ann_parts  # noqa: E402
from pimpmyllama.storage.db import open_database  # noqa: E402


def percentile(values, q):
    return float(np.percentile(np.array(values) * 1000, q))


def bench_ingestion(embedder, modules: int, rounds: int) -> tuple[dict[str, float], int]:
    """chunks/s of the raw embedder and of ingest with exact search only and with the index
    kept from the first row; alternating, best of `rounds` each (the machine's speed drifts)."""
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = write_module_documents(Path(tmp) / "docs", modules)
        texts = []
        for f in files:
            doc = load_document(f)
            texts += [c.embedding_text() for c in chunk_blocks(doc.blocks, embedder.count_tokens, 200, 40)]
        embedder.encode(["warm up"] * 8)
        for r in range(rounds):
            t0 = time.perf_counter()
            embedder.encode(texts)
            best["raw"] = max(best.get("raw", 0), len(texts) / (time.perf_counter() - t0))
            for label, min_rows in (("exact", str(10**12)), ("index", "0")):
                os.environ["PML_ANN_MIN_ROWS"] = min_rows
                store = KnowledgeStore(open_database(Path(tmp) / f"{label}{r}.db"))
                kb = store.create("bench", embedder.name, embedder.dim, 200, 40)
                report = ingest(store, kb, embedder, [str(f) for f in files])
                store.db.close()
                assert report.chunks == len(texts)
                best[label] = max(best.get(label, 0), report.chunks / report.seconds)
    return best, len(texts)


def embeddings(embedder, passages: list[dict], cache: Path, step: int = 1000) -> np.ndarray:
    """The passages' vectors, embedded a block at a time and cached per block."""
    blocks = []
    t0, done = time.perf_counter(), 0
    for start in range(0, len(passages), step):
        path = cache / "embeddings" / f"{start:07d}-{step}.npy"
        if not path.exists():
            vectors = embedder.encode([p["text"] for p in passages[start : start + step]], 64)
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path.with_suffix(".tmp.npy"), vectors)
            path.with_suffix(".tmp.npy").rename(path)
            done += len(vectors)
            print(f"  embedded {start + len(vectors)}/{len(passages)} ({done / (time.perf_counter() - t0):.0f}/s)",
                  flush=True)
        blocks.append(np.load(path))
    return np.concatenate(blocks)[: len(passages)]


def widen(texts: list[str], vectors: np.ndarray, n: int, noise: float) -> tuple[list[str], np.ndarray]:
    """n chunks: the real ones, then repeats of them with noisy vectors."""
    real = len(texts)
    if n <= real:
        return texts[:n], vectors[:n]
    rng = np.random.default_rng(0)
    extra = vectors[np.arange(real, n) % real] + rng.normal(0, noise, (n - real, vectors.shape[1])).astype(np.float32)
    extra /= np.linalg.norm(extra, axis=1, keepdims=True)
    return [texts[i % real] for i in range(n)], np.concatenate([vectors, extra.astype(np.float32)])


def fill(store: KnowledgeStore, embedder, texts, vectors, n: int):
    kb = store.create(f"bench{n}", embedder.name, embedder.dim, 200, 40)
    group = 1000  # one "document" per 1000 passages
    for start in range(0, n, group):
        chunks = [Chunk(i, text, None, None, 0) for i, text in enumerate(texts[start : start + group])]
        store.put_document(kb, f"corpus/{start:07d}", str(start), None, 0, chunks, vectors[start : start + group])
    store.save_index(kb)
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


STORES = {"sqlite-ann": "0", "sqlite-exact": str(10**12), "postgres": None}  # -> PML_ANN_MIN_ROWS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--pg-sizes", default=None, help="sizes for PostgreSQL (default: --sizes)")
    parser.add_argument("--real", type=int, default=100_000, help="real passages embedded (the rest: noisy repeats)")
    parser.add_argument("--noise", type=float, default=0.02)
    parser.add_argument("--modules", type=int, default=150)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--cache", type=Path, default=OUT)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-ingestion", action="store_true")
    parser.add_argument("--stores", default=",".join(STORES), help="which stores to measure, comma-separated")
    args = parser.parse_args()
    embedder = load_embedder()

    if not args.skip_ingestion:
        best, chunks = bench_ingestion(embedder, args.modules, args.rounds)
        print(f"\ningestion of {args.modules} standard-library modules ({chunks} chunks of <= 200 tokens), "
              f"best of {args.rounds} alternating rounds")
        print(f"{'':36} {'chunks/s':>10}")
        print(f"{'raw embedder.encode':36} {best['raw']:>10.1f}")
        for label, what in (("exact", "exact search only"), ("index", "index from the first row")):
            print(f"{'pml kb add, ' + what:36} {best[label]:>10.1f}   "
                  f"ratio {best[label] / best['raw']:.2f}x of raw (goal >= 0.8)")

    sizes = [int(s) for s in args.sizes.split(",")]
    pg_sizes = [int(s) for s in (args.sizes if args.pg_sizes is None else args.pg_sizes).split(",") if s]
    largest = max(sizes + pg_sizes)
    real = min(args.real, largest)
    passages = cached_passages(real + args.queries, args.cache)
    t0 = time.perf_counter()
    vectors = embeddings(embedder, passages, args.cache)
    queries = [p["text"] for p in passages[real : real + args.queries]]
    query_vectors = vectors[real : real + args.queries]
    texts, vectors = widen([p["text"] for p in passages[:real]], vectors[:real], largest, args.noise)
    embed_rate = len(passages) / (time.perf_counter() - t0) if time.perf_counter() - t0 > 60 else None

    import pgserver

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        with_pg = pg_sizes and "postgres" in args.stores.split(",")
        server = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="stop") if with_pg else None
        try:
            for engine, min_rows in STORES.items():
                if engine not in args.stores.split(","):
                    continue
                for n in pg_sizes if engine == "postgres" else sizes:
                    if min_rows is not None:
                        os.environ["PML_ANN_MIN_ROWS"] = min_rows
                    target = Path(tmp) / f"{engine}-{n}.db" if engine != "postgres" else server.get_uri()
                    db = open_database(target)
                    store = KnowledgeStore(db)
                    t0 = time.perf_counter()
                    kb = fill(store, embedder, texts, vectors, n)
                    load = time.perf_counter() - t0
                    ann_parts._cache.clear()  # searched as a fresh process would: the index from its file
                    t0 = time.perf_counter()
                    store.dense_search(kb, query_vectors[0], 10)
                    first = time.perf_counter() - t0
                    result = bench_store(store, kb, vectors, queries, query_vectors)
                    folder = ann_parts.index_folder(Path(target)) if engine != "postgres" else None
                    size = sum(f.stat().st_size for f in folder.iterdir()) if folder and folder.exists() else 0
                    rows.append((engine, n, load, first, size, result))
                    print(f"  {engine} {n}: filled in {load:.1f}s, dense p50 {result['dense_p50']:.2f} ms, "
                          f"recall@10 {result['recall']:.3f}", flush=True)  # a long run's rows as they come
                    db.close()
        finally:
            if server:
                server.cleanup()

    print(f"\nquery latency (ms) over {args.queries} queries, k=10; baseline: exact numpy search in memory; "
          f"{real} real passages, the rest noisy repeats (sigma {args.noise})")
    header = (f"{'store':<13} {'chunks':>8} {'dense p50':>10} {'dense p95':>10} {'hybrid p50':>11} {'hybrid p95':>11} "
              f"{'numpy p50':>10} {'recall@10':>10} {'fill s':>8} {'1st query s':>12} {'index MB':>9}")
    print(header)
    print("-" * len(header))
    for engine, n, load, first, size, r in rows:
        print(f"{engine:<13} {n:>8} {r['dense_p50']:>10.2f} {r['dense_p95']:>10.2f} {r['hybrid_p50']:>11.2f} "
              f"{r['hybrid_p95']:>11.2f} {r['exact_p50']:>10.2f} {r['recall']:>10.3f} {load:>8.1f} {first:>12.2f} "
              f"{size / 1e6:>9.1f}")
    if embed_rate:
        print(f"\nthe embedder ran at {embed_rate:.0f} chunks/s in this run: the fill times above against "
              f"{largest / embed_rate:.0f} s to embed {largest} chunks")


if __name__ == "__main__":
    main()
