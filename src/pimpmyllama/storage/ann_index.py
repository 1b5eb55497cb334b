"""An approximate nearest-neighbour index (HNSW, by usearch) and its file.

The file is one header and the usearch image: `PMLANN1\\n`, the header's length
(4 bytes), the header as JSON (`stamp`: whose index it is, `version`: the database's version
of that part when the image was taken, `crc32`: of the image), the image. A file is written whole or not at
all (atomic rename); one that is truncated, damaged or stamped for another table,
part or database is refused by `load_index`, never trusted.
"""

import json
import struct
import zlib
from pathlib import Path

import numpy as np

from pimpmyllama.atomic import write_bytes_atomic

MAGIC = b"PMLANN1\n"
# HNSW graph as pgvector's defaults (M=16, ef_construction=64). The search is wide: at 100k
# chunks of near-duplicate passages, recall@10 was 0.93 at ef_search 100, 0.97 at 200 and
# 0.99 at 400 (1.2 ms a query; docs/benchmarks.md).
CONNECTIVITY, EXPANSION_ADD, EXPANSION_SEARCH = 16, 64, 400


class AnnIndex:
    """Cosine HNSW over float32 vectors keyed by row id; the same rows added in the same
    order give the same index."""

    def __init__(self, dim: int, image: bytes | None = None):
        from usearch.index import Index

        self.dim = dim
        self._index = Index(ndim=dim, metric="cos", dtype="f32", connectivity=CONNECTIVITY,
                            expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH)
        if image is not None:
            self._index.load(image)

    def __len__(self) -> int:
        return len(self._index)

    def keys(self) -> np.ndarray:
        return np.asarray(self._index.keys, dtype=np.int64)

    def add(self, ids, vectors: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.uint64)
        if len(ids):
            present = ids[self._index.contains(ids)]
            if len(present):
                self._index.remove(present)  # a re-added id takes its new vector
            # One thread: usearch's concurrent inserts can leave a row stored but unreachable
            # by any search (unum-cloud/USearch#735; here 1 build in 10 of 1,000 rows lost one),
            # and their graph differs run to run. On one thread a row is always reachable and
            # the same rows give the same index; the build was no slower here (10k rows).
            self._index.add(ids, np.ascontiguousarray(vectors, dtype=np.float32), threads=1)

    def remove(self, ids) -> None:
        ids = np.asarray(ids, dtype=np.uint64)
        if len(ids):
            self._index.remove(ids)

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Up to k (id, cosine distance), nearest first."""
        matches = self._index.search(np.ascontiguousarray(query, dtype=np.float32), k)
        return [(int(i), float(d)) for i, d in zip(matches.keys, matches.distances)]

    def save(self, path: Path, stamp: dict, version: int) -> None:
        image = bytes(self._index.save())
        header = json.dumps({"stamp": stamp, "version": version, "dim": self.dim,
                             "crc32": zlib.crc32(image)}).encode()
        write_bytes_atomic(path, MAGIC + struct.pack("<I", len(header)) + header + image)


def load_index(path: Path, stamp: dict, dim: int) -> tuple[AnnIndex, int] | None:
    """(the index saved at `path`, its version) if the file is whole and carries exactly
    this stamp, else None."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    start = len(MAGIC) + 4
    if not data.startswith(MAGIC) or len(data) < start:
        return None
    (length,) = struct.unpack("<I", data[len(MAGIC):start])
    try:
        header = json.loads(data[start : start + length])
    except ValueError:
        return None
    image = memoryview(data)[start + length :]
    if (not isinstance(header, dict) or header.get("stamp") != stamp or header.get("dim") != dim
            or header.get("crc32") != zlib.crc32(image) or not isinstance(header.get("version"), int)):
        return None
    try:
        return AnnIndex(dim, image), header["version"]
    except Exception:  # usearch refuses an image it cannot read; the caller rebuilds
        return None
