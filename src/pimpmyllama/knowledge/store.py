"""Knowledge bases in the database: documents, chunks, vectors, keyword index.

A document's chunks and vectors are replaced in one transaction, so a base is
never left with half a document, whatever stops the process.
"""

import fnmatch
import re
from pathlib import PurePath
from typing import Literal

import numpy as np

from pimpmyllama.errors import InvalidInputError, NotFoundError
from pimpmyllama.knowledge.chunking import Chunk
from pimpmyllama.knowledge.records import (
    KnowledgeBase,
    KnowledgeBaseStats,
    KnowledgeBaseSummary,
    StoredChunk,
    StoredDocument,
)
from pimpmyllama.knowledge.stopwords import STOPWORDS
from pimpmyllama.names import check_name
from pimpmyllama.storage.db import Database, utc_now
from pimpmyllama.storage.keyword_index import keyword_index
from pimpmyllama.storage.vectors import VectorTable, vector_table
from pimpmyllama.text import check_text

FILTER_FIELDS = ("source", "title", "heading", "page")


def parse_filters(specs: list[str] | None) -> dict[str, str]:
    """["source=*.md", "page=3"] -> {"source": "*.md", "page": "3"}"""
    filters = {}
    for spec in specs or []:
        field, sep, value = check_text(spec, "the filter").partition("=")
        field = field.strip()
        if not sep or not field:
            raise InvalidInputError(f"filter {spec!r} is not FIELD=VALUE")
        if field not in FILTER_FIELDS:
            raise InvalidInputError(f"unknown filter field {field!r} (known: {', '.join(FILTER_FIELDS)})")
        filters[field] = value.strip()
    return filters


def _page_range(value: str) -> tuple[int, int]:
    try:
        low, _, high = value.partition("-")
        return int(low), int(high or low)
    except ValueError:
        raise InvalidInputError(f"page filter {value!r} is not a number or a range like 3-5") from None


def _glob_match(value: str | None, pattern: str) -> bool:
    return value is not None and fnmatch.fnmatchcase(value, pattern)


def source_matches(source: str, pattern: str) -> bool:
    """A pattern with a '/' is matched against the whole path, otherwise against the file name."""
    return _glob_match(source if "/" in pattern else PurePath(source).name, pattern)


def _clean(text: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL characters (JSON and docstrings can); neither engine keeps them."""
    return None if text is None else text.replace("\x00", "")


def keyword_terms(query: str, limit: int = 32) -> list[str]:
    """The query's distinct words, function words left out (all of them if that is all there is)."""
    words = list(dict.fromkeys(re.findall(r"\w+", query.lower())))
    content = [w for w in words if w not in STOPWORDS]
    return (content or words)[:limit]


class KnowledgeStore:
    def __init__(self, db: Database):
        self.db = db

    # bases ----------------------------------------------------------------------
    def create(self, name: str, embedder: str, dim: int, chunk_size: int, overlap: int) -> KnowledgeBase:
        check_name(name, "knowledge base")
        if not 0 <= overlap < chunk_size:
            raise InvalidInputError(f"overlap {overlap} must be at least 0 and less than chunk size {chunk_size}")
        if self.find(name):
            raise InvalidInputError(f"a knowledge base named {name!r} already exists")
        now = utc_now()
        with self.db.transaction():
            kb_id = self.db.insert(
                "INSERT INTO knowledge_bases (name, embedder, dim, chunk_size, overlap, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (name, embedder, dim, chunk_size, overlap, now, now),
            )
            vectors = vector_table(self.db, "chunks", dim)
            vectors.ensure()
            vectors.ensure_index(kb_id)
        return self.get(name)

    def find(self, name: str) -> KnowledgeBase | None:
        row = self.db.query_one("SELECT * FROM knowledge_bases WHERE name = ?", (name,))
        return KnowledgeBase(**row) if row else None

    def get(self, name: str) -> KnowledgeBase:
        kb = self.find(name)
        if kb is None:
            known = ", ".join(r["name"] for r in self.db.query("SELECT name FROM knowledge_bases ORDER BY name"))
            raise NotFoundError(f"unknown knowledge base {name!r} (known: {known or 'none'}; create one with `pml kb create`)")
        return kb

    def summaries(self) -> list[KnowledgeBaseSummary]:
        rows = self.db.query(
            "SELECT k.name, k.embedder, k.chunk_size, k.overlap, k.updated_at, "
            "(SELECT COUNT(*) FROM documents d WHERE d.kb_id = k.id) AS documents, "
            "(SELECT COUNT(*) FROM chunks c WHERE c.kb_id = k.id) AS chunks "
            "FROM knowledge_bases k ORDER BY k.name"
        )
        return [KnowledgeBaseSummary(**r) for r in rows]

    def stats(self, kb: KnowledgeBase) -> KnowledgeBaseStats:
        row = self.db.query_one(
            "SELECT COUNT(*) AS documents, COALESCE(SUM(bytes), 0) AS bytes FROM documents WHERE kb_id = ?", (kb.id,)
        )
        chunks = self.db.query_one(
            "SELECT COUNT(*) AS chunks, COALESCE(SUM(tokens), 0) AS tokens FROM chunks WHERE kb_id = ?", (kb.id,)
        )
        return KnowledgeBaseStats(**row, **chunks)

    def remove(self, name: str) -> None:
        kb = self.get(name)
        with self.db.transaction():
            vector_table(self.db, "chunks", kb.dim).delete_part(kb.id)
            self.db.execute("DELETE FROM chunks WHERE kb_id = ?", (kb.id,))
            self.db.execute("DELETE FROM documents WHERE kb_id = ?", (kb.id,))
            self.db.execute("DELETE FROM knowledge_bases WHERE id = ?", (kb.id,))

    # documents ------------------------------------------------------------------
    def documents(self, kb: KnowledgeBase) -> list[StoredDocument]:
        rows = self.db.query(
            "SELECT id, source, title, content_hash, bytes, chunk_count, added_at FROM documents "
            "WHERE kb_id = ? ORDER BY source",
            (kb.id,),
        )
        return [StoredDocument(**r) for r in rows]

    def document_hash(self, kb: KnowledgeBase, source: str) -> str | None:
        row = self.db.query_one("SELECT content_hash FROM documents WHERE kb_id = ? AND source = ?", (kb.id, source))
        return row["content_hash"] if row else None

    def put_document(self, kb: KnowledgeBase, source: str, content_hash: str, title: str | None, size: int,
                     chunks: list[Chunk], vectors: np.ndarray) -> Literal["added", "updated", "unchanged"]:
        """Add or replace a document with its chunks and vectors, atomically."""
        vectors_table = vector_table(self.db, "chunks", kb.dim)
        with self.db.transaction():
            self.db.lock_row("knowledge_bases", kb.id)
            # Checked again inside the transaction: another process may have just added it.
            old = self.db.query_one("SELECT id, content_hash FROM documents WHERE kb_id = ? AND source = ?",
                                    (kb.id, source))
            if old and old["content_hash"] == content_hash:
                return "unchanged"
            if old:
                self._delete_documents([old["id"]], vectors_table)
            doc_id = self.db.insert(
                "INSERT INTO documents (kb_id, source, content_hash, title, bytes, chunk_count, added_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (kb.id, source, content_hash, title, size, len(chunks), utc_now()),
            )
            ids = [
                self.db.insert(
                    "INSERT INTO chunks (kb_id, document_id, position, text, heading, page, tokens) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (kb.id, doc_id, c.position, _clean(c.text), _clean(c.heading), c.page, c.tokens),
                )
                for c in chunks
            ]
            vectors_table.add(ids, kb.id, vectors)
            self.db.execute("UPDATE knowledge_bases SET updated_at = ? WHERE id = ?", (utc_now(), kb.id))
        vectors_table.sync_index(kb.id)
        return "updated" if old else "added"

    def _delete_documents(self, doc_ids: list[int], vectors_table: VectorTable) -> None:
        for doc_id in doc_ids:
            chunk_ids = [r["id"] for r in self.db.query("SELECT id FROM chunks WHERE document_id = ?", (doc_id,))]
            vectors_table.delete(chunk_ids)
            self.db.execute("DELETE FROM chunks WHERE document_id = ?", (doc_id,))
            self.db.execute("DELETE FROM documents WHERE id = ?", (doc_id,))

    def remove_documents(self, kb: KnowledgeBase, pattern: str) -> list[str]:
        """Remove the documents whose source matches `pattern` (a path or a glob)."""
        docs = [d for d in self.documents(kb) if d.source == pattern or source_matches(d.source, pattern)]
        vectors_table = vector_table(self.db, "chunks", kb.dim)
        with self.db.transaction():
            self._delete_documents([d.id for d in docs], vectors_table)
        vectors_table.sync_index(kb.id, save=True)
        return [d.source for d in docs]

    def save_index(self, kb: KnowledgeBase) -> None:
        """Write the base's approximate index out now (the end of an ingestion), where it has one."""
        vector_table(self.db, "chunks", kb.dim).sync_index(kb.id, save=True)

    # chunks ---------------------------------------------------------------------
    def chunks(self, ids: list[int]) -> list[StoredChunk]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self.db.query(
            "SELECT c.id, c.document_id, d.source, d.title, c.position, c.text, c.heading, c.page, c.tokens "
            f"FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id IN ({marks})",
            [int(i) for i in ids],
        )
        by_id = {r["id"]: StoredChunk(**r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    def all_chunks(self, kb: KnowledgeBase) -> list[StoredChunk]:
        rows = self.db.query(
            "SELECT c.id, c.document_id, d.source, d.title, c.position, c.text, c.heading, c.page, c.tokens "
            "FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.kb_id = ? ORDER BY c.id",
            (kb.id,),
        )
        return [StoredChunk(**r) for r in rows]

    def filter_chunk_ids(self, kb: KnowledgeBase, filters: dict[str, str]) -> list[int] | None:
        """The ids of the chunks that pass the filters (None: no filter, every chunk)."""
        if not filters:
            return None
        sql = "SELECT c.id FROM chunks c WHERE c.kb_id = ?"
        params: list = [kb.id]
        doc_filters = {f: v for f, v in filters.items() if f in ("source", "title")}
        if doc_filters:
            docs = [d for d in self.documents(kb)
                    if ("source" not in doc_filters or source_matches(d.source, doc_filters["source"]))
                    and ("title" not in doc_filters or _glob_match(d.title, doc_filters["title"]))]
            if not docs:
                return []
            sql += f" AND c.document_id IN ({','.join('?' * len(docs))})"
            params += [d.id for d in docs]
        if "heading" in filters:
            headings = [r["heading"] for r in self.db.query(
                "SELECT DISTINCT heading FROM chunks WHERE kb_id = ? AND heading IS NOT NULL", (kb.id,))
                if _glob_match(r["heading"], filters["heading"])]
            if not headings:
                return []
            sql += f" AND c.heading IN ({','.join('?' * len(headings))})"
            params += headings
        if "page" in filters:
            low, high = _page_range(filters["page"])
            sql += " AND c.page BETWEEN ? AND ?"
            params += [low, high]
        return [r["id"] for r in self.db.query(sql, params)]

    # search ---------------------------------------------------------------------
    def dense_search(self, kb: KnowledgeBase, query: np.ndarray, k: int,
                     among: list[int] | None = None) -> list[tuple[int, float]]:
        return vector_table(self.db, "chunks", kb.dim).search(kb.id, query, k, among)

    def keyword_search(self, kb: KnowledgeBase, query: str, k: int,
                       among: list[int] | None = None) -> list[tuple[int, float]]:
        """Full-text search: BM25 on SQLite (FTS5), ts_rank on PostgreSQL; any term may match."""
        return keyword_index(self.db).search(kb.id, keyword_terms(query), k, among)

    def vectors(self, kb: KnowledgeBase, ids: list[int]) -> dict[int, np.ndarray]:
        return vector_table(self.db, "chunks", kb.dim).get(ids)

    # re-indexing ----------------------------------------------------------------
    def replace_embeddings(self, kb: KnowledgeBase, embedder: str, dim: int, ids: list[int],
                           vectors: np.ndarray) -> KnowledgeBase:
        """Swap every vector of a base for new ones (from another embedder), atomically."""
        with self.db.transaction():
            vector_table(self.db, "chunks", kb.dim).delete_part(kb.id)
            table = vector_table(self.db, "chunks", dim)
            table.ensure()
            table.add(ids, kb.id, vectors)
            table.ensure_index(kb.id)
            self.db.execute("UPDATE knowledge_bases SET embedder = ?, dim = ?, updated_at = ? WHERE id = ?",
                            (embedder, dim, utc_now(), kb.id))
        table.sync_index(kb.id, save=True)
        return self.get(kb.name)
