"""Vector tables: one per kind of owner (chunks, memories) and dimension.

SQLite: a sqlite-vec `vec0` table (exact search, partitioned by knowledge base or
session), and for a large indexed partition an HNSW index file beside the database,
kept consistent with it (storage/ann_parts.py). PostgreSQL: a pgvector column with
an HNSW index per partition (a partial index, so one base's search never has to
filter out another's rows). A search restricted to a set of ids (metadata filters)
ranks only those ids: exactly on PostgreSQL and for small sets on SQLite, through
the index for large ones on SQLite (with exact search as its fallback).

`vector_table(db, kind, dim)` gives the engine's class; each class holds all of its
engine's SQL.
"""

import json

import numpy as np

from pimpmyllama.storage.ann_parts import PartIndex
from pimpmyllama.storage.db import Database

KINDS = ("chunks", "memories")
_BATCH = 500  # ids per DELETE statement


class VectorTable:
    """What both engines do alike; the SQL is in the subclasses."""

    key = "id"  # the column holding the owner row's id

    def __init__(self, db: Database, kind: str, dim: int):
        if kind not in KINDS:
            raise ValueError(kind)
        self.db = db
        self.dim = int(dim)
        self.name = f"vec_{kind}_{self.dim}"

    def ensure(self) -> None:
        """Create the table if it does not exist."""
        raise NotImplementedError

    def ensure_index(self, part: int) -> None:
        """Index one partition for approximate search, where the engine has such an index."""

    def sync_index(self, part: int, save: bool = False) -> None:
        """After a write's commit: bring the partition's approximate index up to date (and
        write it out when `save`), where the engine keeps one outside the database."""

    def add(self, ids: list[int], part: int, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(ids), self.dim):
            raise ValueError(f"expected {len(ids)} vectors of {self.dim} dims, got {vectors.shape}")
        rows = [(int(i), int(part), self._encode(v)) for i, v in zip(ids, vectors)]
        self.db.executemany(f"INSERT INTO {self.name} ({self.key}, part, embedding) VALUES (?, ?, ?)", rows)

    def delete(self, ids: list[int]) -> None:
        for start in range(0, len(ids), _BATCH):
            batch = [int(i) for i in ids[start : start + _BATCH]]
            self.db.execute(f"DELETE FROM {self.name} WHERE {self.key} IN ({','.join('?' * len(batch))})", batch)

    def delete_part(self, part: int) -> None:
        self.db.execute(f"DELETE FROM {self.name} WHERE part = ?", (int(part),))

    def get(self, ids: list[int]) -> dict[int, np.ndarray]:
        if not ids:
            return {}
        rows = self.db.query(
            f"SELECT {self.key} AS id, embedding FROM {self.name} WHERE {self.key} IN ({','.join('?' * len(ids))})",
            [int(i) for i in ids],
        )
        return {r["id"]: self._decode(r["embedding"]) for r in rows}

    def search(self, part: int, query: np.ndarray, k: int, among: list[int] | None = None) -> list[tuple[int, float]]:
        """The k nearest (id, cosine similarity), nearest first; `among` restricts the
        candidates to those ids (exact search over them)."""
        if among is not None and not among:
            return []
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
        rows = self._nearest(int(part), query, int(k), None if among is None else [int(i) for i in among])
        return [(int(r["id"]), 1.0 - float(r["distance"])) for r in rows]

    # per engine -------------------------------------------------------------------
    def _encode(self, vector: np.ndarray):
        raise NotImplementedError

    def _decode(self, stored) -> np.ndarray:
        raise NotImplementedError

    def _nearest(self, part: int, query: np.ndarray, k: int, among: list[int] | None) -> list[dict]:
        """Rows (id, cosine distance), nearest first."""
        raise NotImplementedError


class SQLiteVectorTable(VectorTable):
    key = "rowid"

    def ensure(self) -> None:
        self.db.execute(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {self.name} USING vec0("
            f"part INTEGER PARTITION KEY, embedding float[{self.dim}] distance_metric=cosine)"
        )

    def _part_index(self, part: int) -> PartIndex:
        return PartIndex(self.db, self.name, self.dim, part)

    def ensure_index(self, part: int) -> None:
        self._part_index(part).create()

    def sync_index(self, part: int, save: bool = False) -> None:
        self._part_index(part).sync(save)

    def add(self, ids: list[int], part: int, vectors: np.ndarray) -> None:
        super().add(ids, part, vectors)
        self._part_index(part).changed(len(ids), added=ids, vectors=np.asarray(vectors, dtype=np.float32))

    def delete(self, ids: list[int]) -> None:
        for start in range(0, len(ids), _BATCH):
            batch = [int(i) for i in ids[start : start + _BATCH]]
            counts = self.db.query(f"SELECT part, COUNT(*) AS n FROM {self.name} "
                                   f"WHERE rowid IN ({','.join('?' * len(batch))}) GROUP BY part", batch)
            super().delete(batch)
            for row in counts:  # (ids of other parts among `removed` are not in this part's index)
                self._part_index(row["part"]).changed(-row["n"], removed=batch)

    def delete_part(self, part: int) -> None:
        super().delete_part(part)
        self._part_index(part).drop()

    def _encode(self, vector):
        return vector.tobytes()

    def _decode(self, stored):
        return np.frombuffer(stored, dtype=np.float32)

    def _nearest(self, part, query, k, among):
        rows = self._part_index(part).search(query, k, among)
        return rows if rows is not None else self._exact(part, query, k, among)

    def _exact(self, part, query, k, among):
        sql = f"SELECT rowid AS id, distance FROM {self.name} WHERE embedding MATCH ? AND k = ? AND part = ?"
        params = [query.tobytes(), k, part]
        if among is not None:
            sql += " AND rowid IN (SELECT value FROM json_each(?))"
            params.append(json.dumps(among))
        return self.db.query(sql + " ORDER BY distance", params)


class PostgresVectorTable(VectorTable):
    def ensure(self) -> None:
        self.db.execute(
            f"CREATE TABLE IF NOT EXISTS {self.name} (id BIGINT PRIMARY KEY, part BIGINT NOT NULL, "
            f"embedding vector({self.dim}) NOT NULL)"
        )
        self.db.execute(f"CREATE INDEX IF NOT EXISTS {self.name}_part ON {self.name} (part)")

    def ensure_index(self, part: int) -> None:
        """An HNSW index over one partition (m=16, ef_construction=64)."""
        self.db.execute(
            f"CREATE INDEX IF NOT EXISTS {self.name}_hnsw_{int(part)} ON {self.name} "
            f"USING hnsw (embedding vector_cosine_ops) WHERE part = {int(part)}"
        )

    def delete_part(self, part: int) -> None:
        super().delete_part(part)
        self.db.execute(f"DROP INDEX IF EXISTS {self.name}_hnsw_{int(part)}")

    def _encode(self, vector):
        return vector

    def _decode(self, stored):
        return np.asarray(stored, dtype=np.float32)

    def _nearest(self, part, query, k, among):
        if among is not None:
            # Materialised first, so the planner cannot scan the index and filter after.
            return self.db.query(
                f"WITH c AS MATERIALIZED (SELECT id, embedding FROM {self.name} WHERE id = ANY(?)) "
                f"SELECT id, embedding <=> ? AS distance FROM c ORDER BY distance LIMIT ?",
                [among, query, k],
            )
        # The partition is a literal so the planner can match the partial HNSW index.
        return self.db.query(
            f"SELECT id, embedding <=> ? AS distance FROM {self.name} WHERE part = {part} "
            f"ORDER BY embedding <=> ? LIMIT ?",
            [query, query, k],
        )


_ENGINES: dict[str, type[VectorTable]] = {"sqlite": SQLiteVectorTable, "postgres": PostgresVectorTable}


def vector_table(db: Database, kind: str, dim: int) -> VectorTable:
    """The vector table of `kind` and `dim` in `db`, in that engine's SQL."""
    return _ENGINES[db.dialect](db, kind, dim)
