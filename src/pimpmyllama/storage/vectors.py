"""Vector tables: one per kind of owner (chunks, memories) and dimension.

SQLite: a sqlite-vec `vec0` table (exact search, partitioned by knowledge base or
session). PostgreSQL: a pgvector column with an HNSW index per partition (a partial
index, so one base's search never has to filter out another's rows). A search
restricted to a set of ids (metadata filters) is exact on both engines, and the
restriction is applied before ranking, never after.
"""

import json

import numpy as np

from pimpmyllama.storage.db import Database

KINDS = ("chunks", "memories")


class VectorTable:
    def __init__(self, db: Database, kind: str, dim: int):
        if kind not in KINDS:
            raise ValueError(kind)
        self.db = db
        self.dim = int(dim)
        self.name = f"vec_{kind}_{self.dim}"

    def ensure(self) -> None:
        if self.db.dialect == "sqlite":
            self.db.execute(
                f"CREATE VIRTUAL TABLE IF NOT EXISTS {self.name} USING vec0("
                f"part INTEGER PARTITION KEY, embedding float[{self.dim}] distance_metric=cosine)"
            )
        else:
            self.db.execute(
                f"CREATE TABLE IF NOT EXISTS {self.name} (id BIGINT PRIMARY KEY, part BIGINT NOT NULL, "
                f"embedding vector({self.dim}) NOT NULL)"
            )
            self.db.execute(f"CREATE INDEX IF NOT EXISTS {self.name}_part ON {self.name} (part)")

    def ensure_index(self, part: int) -> None:
        """PostgreSQL: an HNSW index over one partition (m=16, ef_construction=64)."""
        if self.db.dialect == "postgres":
            self.db.execute(
                f"CREATE INDEX IF NOT EXISTS {self.name}_hnsw_{int(part)} ON {self.name} "
                f"USING hnsw (embedding vector_cosine_ops) WHERE part = {int(part)}"
            )

    def add(self, ids: list[int], part: int, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(ids), self.dim):
            raise ValueError(f"expected {len(ids)} vectors of {self.dim} dims, got {vectors.shape}")
        if self.db.dialect == "sqlite":
            rows = [(int(i), int(part), v.tobytes()) for i, v in zip(ids, vectors)]
            self.db.executemany(f"INSERT INTO {self.name} (rowid, part, embedding) VALUES (?, ?, ?)", rows)
        else:
            rows = [(int(i), int(part), v) for i, v in zip(ids, vectors)]
            self.db.executemany(f"INSERT INTO {self.name} (id, part, embedding) VALUES (?, ?, ?)", rows)

    def delete(self, ids: list[int]) -> None:
        if not ids:
            return
        key = "rowid" if self.db.dialect == "sqlite" else "id"
        for start in range(0, len(ids), 500):
            batch = [int(i) for i in ids[start : start + 500]]
            marks = ",".join("?" * len(batch))
            self.db.execute(f"DELETE FROM {self.name} WHERE {key} IN ({marks})", batch)

    def delete_part(self, part: int) -> None:
        self.db.execute(f"DELETE FROM {self.name} WHERE part = ?", (int(part),))
        if self.db.dialect == "postgres":
            self.db.execute(f"DROP INDEX IF EXISTS {self.name}_hnsw_{int(part)}")

    def get(self, ids: list[int]) -> dict[int, np.ndarray]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        key = "rowid" if self.db.dialect == "sqlite" else "id"
        rows = self.db.query(f"SELECT {key} AS id, embedding FROM {self.name} WHERE {key} IN ({marks})",
                             [int(i) for i in ids])
        if self.db.dialect == "sqlite":
            return {r["id"]: np.frombuffer(r["embedding"], dtype=np.float32) for r in rows}
        return {r["id"]: np.asarray(r["embedding"], dtype=np.float32) for r in rows}

    def search(self, part: int, query: np.ndarray, k: int, among: list[int] | None = None) -> list[tuple[int, float]]:
        """The k nearest (id, cosine similarity), nearest first; `among` restricts the
        candidates to those ids (exact search over them)."""
        if among is not None and not among:
            return []
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
        if self.db.dialect == "sqlite":
            sql = f"SELECT rowid AS id, distance FROM {self.name} WHERE embedding MATCH ? AND k = ? AND part = ?"
            params = [query.tobytes(), int(k), int(part)]
            if among is not None:
                sql += " AND rowid IN (SELECT value FROM json_each(?))"
                params.append(json.dumps([int(i) for i in among]))
            rows = self.db.query(sql + " ORDER BY distance", params)
        elif among is not None:
            # Materialised first, so the planner cannot scan the index and filter after.
            rows = self.db.query(
                f"WITH c AS MATERIALIZED (SELECT id, embedding FROM {self.name} WHERE id = ANY(?)) "
                f"SELECT id, embedding <=> ? AS distance FROM c ORDER BY distance LIMIT ?",
                [[int(i) for i in among], query, int(k)],
            )
        else:
            # The partition is a literal so the planner can match the partial HNSW index.
            rows = self.db.query(
                f"SELECT id, embedding <=> ? AS distance FROM {self.name} WHERE part = {int(part)} "
                f"ORDER BY embedding <=> ? LIMIT ?",
                [query, query, int(k)],
            )
        return [(int(r["id"]), 1.0 - float(r["distance"])) for r in rows]
