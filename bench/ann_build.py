"""The approximate index built on one thread, as the store builds it, against usearch's
default of all threads, in the same run: build time, rows that no search finds (each
row's own vector as the query, at the store's ef_search), rows added a document at a time, recall@10 against exact
numpy, and whether two builds of the same rows give the same file.

    python bench/ann_build.py --cache bench/out [--real 4000] [--n 20000]

The vectors are bench/ann_libraries.py's (bench/rag.py caches them; run it first).
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "src"))
from ann_libraries import K, add_vector_arguments, exact_top, load_vectors  # noqa: E402

from pimpmyllama.storage.ann_index import CONNECTIVITY, EXPANSION_ADD, EXPANSION_SEARCH  # noqa: E402


def build(matrix: np.ndarray, threads: int, batch: int):
    from usearch.index import Index

    index = Index(ndim=matrix.shape[1], metric="cos", dtype="f32", connectivity=CONNECTIVITY,
                  expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH)
    started = time.perf_counter()
    for start in range(0, len(matrix), batch):  # one add per document, as an ingestion makes them
        index.add(np.arange(start, min(start + batch, len(matrix))), matrix[start : start + batch], threads=threads)
    return index, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_vector_arguments(parser)
    parser.add_argument("--batch", type=int, default=100, help="rows per add (a document's chunks)")
    args = parser.parse_args()
    matrix, queries = load_vectors(args)
    truth = exact_top(matrix, queries)
    print(f"{args.n} vectors of {matrix.shape[1]} dims, {len(queries)} queries, k={K}, ef_search={EXPANSION_SEARCH}, "
          f"M={CONNECTIVITY}, ef_construction={EXPANSION_ADD}, {args.batch} rows per add; {os.cpu_count()} CPUs")
    print(f"{'threads':<12} {'build s':>8} {'rows not found':>15} {'recall@10':>10}  same file twice")
    for label, threads in (("1 (store)", 1), ("all", 0)):
        first, seconds = build(matrix, threads, args.batch)
        second, _ = build(matrix, threads, args.batch)
        own = first.search(matrix, K, threads=0).keys  # searching in parallel is safe
        lost = int(sum(i not in row for i, row in enumerate(own.tolist())))
        found = first.search(queries, K, threads=0).keys.tolist()
        recall = np.mean([len(set(f) & t) / K for f, t in zip(found, truth)])
        same = bytes(first.save()) == bytes(second.save())
        print(f"{label:<12} {seconds:>8.1f} {lost:>15} {recall:>10.3f}  {'yes' if same else 'no'}", flush=True)


if __name__ == "__main__":
    main()
