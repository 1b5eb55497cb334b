"""A small connection wrapper: the same SQL (with `?` placeholders) on every engine.

SQLite is the default (a file in `$PML_HOME`, write-ahead log, waits on locks
instead of failing). Queries return plain dicts.
"""

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Database:
    dialect = "sqlite"

    def __init__(self, path: Path):
        self.path = path
        # Autocommit mode: transactions are opened explicitly by `transaction()`.
        self._conn = sqlite3.connect(str(path), isolation_level=None, timeout=30, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._depth = 0

    def close(self) -> None:
        self._conn.close()

    def execute(self, sql: str, params: tuple | list = ()) -> int:
        """Run a statement; return the new row's id for an INSERT."""
        cursor = self._conn.execute(sql, params)
        return cursor.lastrowid

    def executescript(self, sql: str) -> None:
        for statement in (s.strip() for s in sql.split(";")):
            if statement:
                self._conn.execute(statement)

    def query(self, sql: str, params: tuple | list = ()) -> list[dict]:
        return [dict(row) for row in self._conn.execute(sql, params).fetchall()]

    def query_one(self, sql: str, params: tuple | list = ()) -> dict | None:
        row = self._conn.execute(sql, params).fetchone()
        return dict(row) if row is not None else None

    @contextmanager
    def transaction(self) -> Iterator["Database"]:
        """All or nothing; nested uses join the outer transaction. IMMEDIATE takes the
        write lock up front, so two writers queue instead of deadlocking."""
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self._conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        else:
            self._conn.execute("COMMIT")
        finally:
            self._depth = 0


def open_database(path: Path | None = None) -> Database:
    from pimpmyllama.paths import database_path
    from pimpmyllama.storage.migrations import migrate

    db = Database(path or database_path())
    migrate(db)
    return db
