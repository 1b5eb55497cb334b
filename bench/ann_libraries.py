"""The approximate nearest-neighbour libraries measured side by side, against exact
numpy search in the same run: build time, p50 query time, recall@10, incremental
add/remove, filtered search and the saved file's size. Each runs HNSW with the same
graph (M=16, ef_construction=64, as pgvector's defaults) on cosine distance, float32.

    python bench/ann_libraries.py --cache bench/out [--real 4000] [--n 20000]

The vectors are the bundled embedder's as bench/rag.py caches them (run it first):
the first --real passages, then noisy repeats of them up to --n (bench/rag.py's
`widen`); the 200 passages after them are the queries. Libraries that are not
installed are skipped.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from corpus import OUT  # noqa: E402
from rag import widen  # noqa: E402

M, EF_CONSTRUCTION, QUERIES, K = 16, 64, 200, 10


def add_vector_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache", type=Path, default=OUT)
    parser.add_argument("--real", type=int, default=4000)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--noise", type=float, default=0.02)


def load_vectors(args) -> tuple[np.ndarray, np.ndarray]:
    """(--n vectors: the first --real cached passages, then noisy repeats; the QUERIES passages after them)."""
    cache, real, n, noise = args.cache, args.real, args.n, args.noise
    blocks = sorted((cache / "embeddings").glob("*-1000.npy"))[: (real + QUERIES + 999) // 1000]
    data = np.concatenate([np.load(b) for b in blocks]).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    _, matrix = widen([""] * real, data[:real], n, noise)
    return matrix, data[real : real + QUERIES]


def exact_top(matrix, queries, k=K):
    scores = queries @ matrix.T
    return [set(np.argpartition(-s, k)[:k].tolist()) for s in scores]


def timed_queries(search, queries):
    times, found = [], []
    for q in queries:
        t0 = time.perf_counter()
        found.append(search(q))
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000), found


def run_usearch(matrix, queries, ef, folder):
    from usearch.index import Index

    index = Index(ndim=matrix.shape[1], metric="cos", dtype="f32", connectivity=M, expansion_add=EF_CONSTRUCTION,
                  expansion_search=ef)
    t0 = time.perf_counter()
    index.add(np.arange(len(matrix)), matrix)
    build = time.perf_counter() - t0
    p50, found = timed_queries(lambda q: set(index.search(q, K).keys.tolist()), queries)
    path = os.path.join(folder, "u.usearch")
    index.save(path)
    index.remove(np.arange(0, len(matrix), 10))  # incremental remove: marks deleted
    return build, p50, found, os.path.getsize(path), "oversample + exact fallback (no predicate in Python)"


def run_hnswlib(matrix, queries, ef, folder):
    import hnswlib

    index = hnswlib.Index(space="cosine", dim=matrix.shape[1])
    index.init_index(max_elements=len(matrix), M=M, ef_construction=EF_CONSTRUCTION, allow_replace_deleted=True)
    t0 = time.perf_counter()
    index.add_items(matrix, np.arange(len(matrix)))
    build = time.perf_counter() - t0
    index.set_ef(ef)
    index.set_num_threads(1)
    p50, found = timed_queries(lambda q: set(index.knn_query(q, K)[0][0].tolist()), queries)
    allowed = set(range(0, len(matrix), 2))
    fp50, _ = timed_queries(lambda q: index.knn_query(q, K, filter=lambda i: i in allowed), queries[:20])
    path = os.path.join(folder, "h.bin")
    index.save_index(path)
    return build, p50, found, os.path.getsize(path), f"Python callback per candidate ({fp50:.2f} ms at 50 %)"


def run_faiss(matrix, queries, ef, folder):
    import faiss

    hnsw = faiss.IndexHNSWFlat(matrix.shape[1], M, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = EF_CONSTRUCTION
    index = faiss.IndexIDMap2(hnsw)
    t0 = time.perf_counter()
    index.add_with_ids(matrix, np.arange(len(matrix)))
    build = time.perf_counter() - t0
    faiss.omp_set_num_threads(1)  # one query at a time, as the others (its OpenMP pool spins otherwise)
    params = faiss.SearchParametersHNSW(efSearch=ef)
    p50, found = timed_queries(lambda q: set(index.search(q[None], K, params=params)[1][0].tolist()), queries)
    sel = faiss.IDSelectorBatch(np.arange(0, len(matrix), 2))
    fparams = faiss.SearchParametersHNSW(efSearch=ef, sel=sel)
    fp50, _ = timed_queries(lambda q: index.search(q[None], K, params=fparams), queries[:50])
    path = os.path.join(folder, "f.index")
    faiss.write_index(index, path)
    filtered = f"IDSelector in C++ ({fp50:.2f} ms at 50 %); HNSW remove unsupported"
    return build, p50, found, os.path.getsize(path), filtered


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_vector_arguments(parser)
    parser.add_argument("--ef", type=int, default=100)
    args = parser.parse_args()
    matrix, queries = load_vectors(args)
    truth = exact_top(matrix, queries)
    exact_p50, _ = timed_queries(lambda q: np.argpartition(-(matrix @ q), K)[:K], queries)
    print(f"{args.n} vectors of {matrix.shape[1]} dims, {QUERIES} queries, k={K}, ef_search={args.ef}, "
          f"M={M}, ef_construction={EF_CONSTRUCTION}; exact numpy p50 {exact_p50:.2f} ms")
    print(f"{'library':<10} {'build s':>8} {'p50 ms':>7} {'recall@10':>10} {'file MB':>8}  filtered search")
    for name, run in (("usearch", run_usearch), ("hnswlib", run_hnswlib), ("faiss", run_faiss)):
        try:
            with tempfile.TemporaryDirectory() as folder:
                build, p50, found, size, filtered = run(matrix, queries, args.ef, folder)
        except ImportError:
            print(f"{name:<10} not installed")
            continue
        recall = np.mean([len(f & t) / K for f, t in zip(found, truth)])
        print(f"{name:<10} {build:>8.1f} {p50:>7.2f} {recall:>10.3f} {size / 1e6:>8.1f}  {filtered}", flush=True)


if __name__ == "__main__":
    main()
