"""The chunks' full-text index: BM25 over FTS5 on SQLite, ts_rank over a tsvector
column on PostgreSQL (both kept up to date by the migrations' triggers and columns).

`keyword_index(db)` gives the engine's class; each holds all of its engine's SQL.
Any term may match; a higher score is a better match on both engines.
"""

import json

from pimpmyllama.storage.db import Database


class KeywordIndex:
    def __init__(self, db: Database):
        self.db = db

    def search(self, kb_id: int, terms: list[str], k: int, among: list[int] | None = None) -> list[tuple[int, float]]:
        """The k best (chunk id, score) of base `kb_id`, best first; `among` restricts
        the candidates to those chunk ids."""
        if not terms or (among is not None and not among):
            return []
        sql, params = self._query(kb_id, terms, None if among is None else [int(i) for i in among])
        return [(int(r["id"]), float(r["score"])) for r in self.db.query(sql, [*params, int(k)])]

    def _query(self, kb_id: int, terms: list[str], among: list[int] | None) -> tuple[str, list]:
        """The SQL (its last placeholder is the limit) and its other parameters."""
        raise NotImplementedError


class SQLiteKeywordIndex(KeywordIndex):
    def _query(self, kb_id, terms, among):
        sql = ("SELECT c.id AS id, -bm25(chunks_fts) AS score FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid "
               "WHERE chunks_fts MATCH ? AND c.kb_id = ?")
        params: list = [" OR ".join(f'"{t}"' for t in terms), kb_id]
        if among is not None:
            sql += " AND c.id IN (SELECT value FROM json_each(?))"
            params.append(json.dumps(among))
        return sql + " ORDER BY bm25(chunks_fts) LIMIT ?", params


class PostgresKeywordIndex(KeywordIndex):
    def _query(self, kb_id, terms, among):
        sql = "SELECT id, ts_rank(tsv, q) AS score FROM chunks, to_tsquery('simple', ?) q WHERE tsv @@ q AND kb_id = ?"
        params: list = [" | ".join(terms), kb_id]
        if among is not None:
            sql += " AND id = ANY(?)"
            params.append(among)
        return sql + " ORDER BY score DESC, id LIMIT ?", params


_ENGINES: dict[str, type[KeywordIndex]] = {"sqlite": SQLiteKeywordIndex, "postgres": PostgresKeywordIndex}


def keyword_index(db: Database) -> KeywordIndex:
    return _ENGINES[db.dialect](db)
