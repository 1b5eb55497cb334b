"""Approximate search over the large parts of SQLite vector tables, kept consistent
with the database.

A part (one knowledge base's vectors) that has a row in `vector_indexes` is indexed:
each write to it, in the writer's transaction, adds one to the row's `version` and
keeps its `row_count`. The index file beside the database (`pml.db.ann/`) carries
the row's `uid` and the version it was taken at. Opening the index compares the two:
same version, it is used as it is; an older version of the same uid (a process killed
between its database commit and its index write, or one that has not written yet),
the missing changes are applied: from this process's journal of its own committed
writes where it holds them all, else from the database (ids added, ids removed); another
uid, a damaged file or none, it is rebuilt from the database. A search never uses an
index that is behind the database it reads.

Parts under `PML_ANN_MIN_ROWS` rows (default `EXACT_BELOW_ROWS`) are searched
exactly, which is faster there (bench/rag.py).
"""

import os
import signal
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pimpmyllama.atomic import sweep_stale_temps
from pimpmyllama.errors import PmlError
from pimpmyllama.storage.ann_index import AnnIndex, load_index
from pimpmyllama.storage.db import Database

EXACT_BELOW_ROWS = 2_000
MIN_ROWS = "PML_ANN_MIN_ROWS"
# Test hook: kill this process after the database commit, before the index file is written.
CRASH_HOOK = "PML_CRASH_BEFORE_INDEX_WRITE"
_FETCH = 5000  # vectors per query when catching up


def min_rows() -> int:
    raw = os.environ.get(MIN_ROWS, "").strip()
    if not raw:
        return EXACT_BELOW_ROWS
    if not raw.isdigit():
        raise PmlError(f"{MIN_ROWS} must be a whole number of rows, not {raw!r}")
    return int(raw)


@dataclass
class _Loaded:
    stamp: dict
    index: AnnIndex
    version: int  # the database version the index reflects
    saved: int | None  # the version of the file on disk, if this process knows it
    pending: int = 0  # rows added or removed since the file was written


_cache: dict[tuple[str, str, int], _Loaded] = {}
_lock = threading.RLock()
# What this process's own committed writes did to each part, by the version they made:
# (ids added, their vectors, ids removed). Catching up through versions all found here
# needs no scan of the part (a scan of a vec0 table reads every row: 0.8 s at 200k).
_journal: dict[tuple[str, str, int], dict[int, tuple[list[int], np.ndarray | None, list[int]]]] = {}


def index_folder(db_path: Path) -> Path:
    return db_path.parent / f"{db_path.name}.ann"


class PartIndex:
    """The approximate index of one part of one SQLite vector table."""

    def __init__(self, db: Database, table: str, dim: int, part: int):
        self.db, self.table, self.dim, self.part = db, table, dim, int(part)
        self.path = index_folder(Path(db.path)) / f"{table}.{self.part}.usearch"
        self._key = (str(Path(db.path).resolve()), table, self.part)

    # inside the writer's transaction -------------------------------------------------
    def create(self) -> None:
        """Index this part from now on (a new uid: no older file is taken for it)."""
        self.db.execute(
            f"INSERT OR IGNORE INTO vector_indexes (name, part, uid, version, row_count) "
            f"SELECT ?, ?, ?, 0, COUNT(*) FROM {self.table} WHERE part = ?",
            (self.table, self.part, uuid.uuid4().hex, self.part),
        )

    def changed(self, rows_delta: int, added: list[int] = (), vectors: np.ndarray | None = None,
                removed: list[int] = ()) -> None:
        """Count a write to the part: `added` ids (with their `vectors`), `removed` ids."""
        self.db.execute("UPDATE vector_indexes SET version = version + 1, row_count = row_count + ? "
                        "WHERE name = ? AND part = ?", (int(rows_delta), self.table, self.part))
        state = self.db.query_one("SELECT version FROM vector_indexes WHERE name = ? AND part = ?",
                                  (self.table, self.part))
        if state is None:
            return
        change = ([int(i) for i in added], vectors, [int(i) for i in removed])

        def committed(version: int = state["version"], key=self._key) -> None:
            with _lock:
                _journal.setdefault(key, {})[version] = change

        self.db.after_commit(committed)

    def drop(self) -> None:
        self.db.execute("DELETE FROM vector_indexes WHERE name = ? AND part = ?", (self.table, self.part))
        _cache.pop(self._key, None)
        _journal.pop(self._key, None)
        self.path.unlink(missing_ok=True)

    # reading -------------------------------------------------------------------------
    def current(self) -> AnnIndex | None:
        """The index, brought up to the database's version; None where the part is searched exactly."""
        state = self.db.query_one("SELECT uid, version, row_count FROM vector_indexes WHERE name = ? AND part = ?",
                                  (self.table, self.part))
        if state is None or state["row_count"] < min_rows():
            with _lock:
                _journal.pop(self._key, None)  # searched exactly: nothing to catch up
            return None
        stamp = {"table": self.table, "part": self.part, "uid": state["uid"]}
        loaded = _cache.get(self._key)
        if loaded is None or loaded.stamp != stamp:
            found = load_index(self.path, stamp, self.dim)
            loaded = _Loaded(stamp, *found, found[1]) if found else _Loaded(stamp, AnnIndex(self.dim), -1, None)
            _cache[self._key] = loaded
        if loaded.version != state["version"]:
            self._catch_up(loaded, state["version"])
            # Rebuilt, or a quarter of the part changed since the file: worth writing (a long
            # ingestion then writes it O(log n) times).
            if loaded.saved is None or loaded.pending >= len(loaded.index) // 4:
                self._write(loaded)
        return loaded.index

    def _catch_up(self, loaded: _Loaded, version: int) -> None:
        """Make the index hold exactly the part's rows: from this process's journal where it
        holds every version since the index's, else by comparing ids with the database."""
        journal = _journal.get(self._key, {})
        steps = range(loaded.version + 1, version + 1)
        if loaded.version >= 0 and steps and all(v in journal for v in steps):
            for v in steps:
                added, vectors, removed = journal[v]
                if removed:
                    have = loaded.index.keys()
                    loaded.index.remove(np.intersect1d(have, np.array(removed, dtype=np.int64)))
                if added:
                    loaded.index.add(added, vectors)
                loaded.pending += len(added) + len(removed)
            loaded.version = version
        else:
            self._compare(loaded, version)
        for v in [v for v in journal if v <= version]:
            del journal[v]

    def _compare(self, loaded: _Loaded, version: int) -> None:
        """Add the ids the database has and the index lacks, remove those it no longer has."""
        ids = np.array([r["id"] for r in self.db.query(f"SELECT rowid AS id FROM {self.table} WHERE part = ?",
                                                        (self.part,))], dtype=np.int64)
        have = loaded.index.keys()
        gone, missing = np.setdiff1d(have, ids), np.setdiff1d(ids, have)
        loaded.index.remove(gone)
        loaded.pending += len(gone) + len(missing)
        for start in range(0, len(missing), _FETCH):
            batch = [int(i) for i in missing[start : start + _FETCH]]
            rows = self.db.query(f"SELECT rowid AS id, embedding FROM {self.table} "
                                 f"WHERE rowid IN ({','.join('?' * len(batch))})", batch)
            if rows:
                loaded.index.add([r["id"] for r in rows],
                                 np.stack([np.frombuffer(r["embedding"], dtype=np.float32) for r in rows]))
        loaded.version = version

    def search(self, query: np.ndarray, k: int, among: list[int] | None) -> list[dict] | None:
        """Rows (id, cosine distance), nearest first, through the index; None where the part
        (or the filter's share of it) is searched exactly."""
        with _lock:  # one thread at a time reads or changes an index (a server's threads)
            index = self.current()
            if index is None or (among is not None and not approximate_among(len(among), len(index))):
                return None
            return approximate_search(index, query, k, among)

    # after the writer's commit ---------------------------------------------------------
    def sync(self, save: bool = False) -> None:
        """Bring the index up to date, and write its file now if `save`."""
        with _lock:
            index = self.current()
            loaded = _cache.get(self._key)
            if save and index is not None and loaded is not None and loaded.saved != loaded.version:
                self._write(loaded)

    def _write(self, loaded: _Loaded) -> None:
        if os.environ.get(CRASH_HOOK):
            os.kill(os.getpid(), signal.SIGKILL)
        try:
            sweep_stale_temps(self.path.parent)
            loaded.index.save(self.path, loaded.stamp, loaded.version)
        except OSError:
            return  # a folder we cannot write: the index in memory is right, the next process catches up
        loaded.saved, loaded.pending = loaded.version, 0


# A filter that keeps under this share of a part is searched exactly over the rows it
# keeps (the index would have to look at too many neighbours to find k of them).
FILTERED_EXACT_SHARE = 0.05


def approximate_among(kept: int, rows: int) -> bool:
    """Whether a search restricted to `kept` of a part's `rows` rows should use the index."""
    return kept >= min_rows() and kept >= FILTERED_EXACT_SHARE * rows


def approximate_search(index: AnnIndex, query: np.ndarray, k: int, among: list[int] | None) -> list[dict] | None:
    """Rows (id, cosine distance), nearest first; with `among`, only those ids, ranked
    among themselves. None when the index did not find min(k, len(among)) of them (the
    caller then searches exactly, so a filter never returns fewer rows than exist)."""
    if among is None:
        return [{"id": i, "distance": d} for i, d in index.search(query, k)]
    allowed = set(among)
    want = min(k, len(allowed))
    # Neighbours to look at so that about twice k of them pass the filter.
    count = min(len(index), 2 * k * len(index) // max(1, len(allowed)) + k)
    while True:
        hits = [(i, d) for i, d in index.search(query, count) if i in allowed][:k]
        if len(hits) >= want:
            return [{"id": i, "distance": d} for i, d in hits]
        if count >= len(index):
            return None
        count = min(len(index), count * 4)
