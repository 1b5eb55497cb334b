"""One database interface, two engines: SQLite (the default, a file in `$PML_HOME`) and
PostgreSQL + pgvector (when `PML_DATABASE_URL` names one).

SQL is written once with `?` placeholders; queries return plain dicts. SQLite runs
through `sqlean.py`, a drop-in build of the sqlite3 module that can load the
sqlite-vec extension (this Python's own sqlite3 cannot load extensions).
"""

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pimpmyllama.errors import PmlError
from pimpmyllama.paths import database_path
from pimpmyllama.storage.clock import utc_now  # noqa: F401 (the stores import it from here)
from pimpmyllama.storage.migrations import migrate
from pimpmyllama.storage.targets import parse_target, redact

# Seconds; a server that accepts a connection and never answers, or a statement that
# runs away, ends in one line instead of a silent hang.
CONNECT_TIMEOUT = ("PML_DB_CONNECT_TIMEOUT", 10.0)
STATEMENT_TIMEOUT = ("PML_DB_STATEMENT_TIMEOUT", 60.0)


class Database:
    dialect = ""

    def __init__(self):
        self._depth = 0
        self._after_commit: list = []

    def after_commit(self, callback) -> None:
        """Call `callback()` once the current transaction has committed (at once outside
        one); never if it rolls back."""
        if self._depth:
            self._after_commit.append(callback)
        else:
            callback()

    # subclasses provide: _execute, _fetchall, insert, script, _begin/_commit/_rollback, close
    def execute(self, sql: str, params: tuple | list = ()) -> None:
        self._execute(sql, params)

    def query(self, sql: str, params: tuple | list = ()) -> list[dict]:
        return self._fetchall(sql, params)

    def query_one(self, sql: str, params: tuple | list = ()) -> dict | None:
        rows = self._fetchall(sql, params)
        return rows[0] if rows else None

    def lock_row(self, table: str, row_id: int) -> None:
        """Within a transaction: make concurrent writers of this row wait their turn.
        SQLite's IMMEDIATE transactions already serialise writers; PostgreSQL needs
        the row lock."""

    def lock_migrations(self) -> None:
        """Within a transaction: make concurrent migrators wait their turn (SQLite's
        IMMEDIATE transactions already do)."""

    @contextmanager
    def transaction(self) -> Iterator["Database"]:
        """All or nothing; nested uses join the outer transaction."""
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self._begin()
        self._depth = 1
        try:
            yield self
        except BaseException:
            self._after_commit.clear()
            self._rollback()
            raise
        else:
            self._commit()
        finally:
            self._depth = 0
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()


class SQLiteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, path: Path):
        super().__init__()
        import sqlean
        import sqlite_vec

        self.path = path
        try:
            # Autocommit mode: transactions are opened explicitly by `transaction()`.
            self._conn = sqlean.connect(str(path), isolation_level=None, timeout=60, check_same_thread=False)
        except sqlean.Error as exc:
            raise PmlError(f"cannot open the SQLite database {path}: {exc}") from None
        try:
            self._conn.row_factory = sqlean.Row
            self._conn.enable_load_extension(True)
            sqlite_vec.load(self._conn)
            self._conn.enable_load_extension(False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable at checkpoints, never corrupt
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute("PRAGMA busy_timeout=60000")
        except sqlean.DatabaseError as exc:
            self._conn.close()
            if "not a database" in str(exc):
                raise PmlError(f"{path} is not an SQLite database (or it is damaged)") from None
            raise PmlError(f"cannot open the SQLite database {path}: {exc}") from None

    def close(self) -> None:
        self._conn.close()

    def _execute(self, sql, params):
        self._conn.execute(sql, params)

    def executemany(self, sql: str, rows) -> None:
        self._conn.executemany(sql, rows)

    def _fetchall(self, sql, params):
        return [dict(row) for row in self._conn.execute(sql, params).fetchall()]

    def insert(self, sql: str, params: tuple | list = ()) -> int:
        return self._conn.execute(sql, params).lastrowid

    def script(self, sql: str) -> None:
        for statement in _statements(sql):
            self._conn.execute(statement)

    def _begin(self):
        # IMMEDIATE takes the write lock up front: two writers queue instead of deadlocking.
        self._conn.execute("BEGIN IMMEDIATE")

    def _commit(self):
        self._conn.execute("COMMIT")

    def _rollback(self):
        self._conn.execute("ROLLBACK")


class PostgresDatabase(Database):
    dialect = "postgres"

    def __init__(self, url: str):
        super().__init__()
        import psycopg
        from psycopg.rows import dict_row

        self.url = url
        connect_timeout = _seconds(*CONNECT_TIMEOUT)
        self.statement_timeout = _seconds(*STATEMENT_TIMEOUT)
        try:
            # libpq counts whole seconds, at least 2.
            self._conn = psycopg.connect(url, autocommit=True, row_factory=dict_row,
                                         connect_timeout=max(2, math.ceil(connect_timeout)))
        except psycopg.errors.ConnectionTimeout:
            raise PmlError(f"cannot connect to PostgreSQL at {redact(url)}: no answer within "
                           f"{connect_timeout:g} s ({CONNECT_TIMEOUT[0]})") from None
        except psycopg.OperationalError as exc:
            raise PmlError(f"cannot connect to PostgreSQL at {redact(url)}: {_first_line(exc)}") from None
        self._conn.execute(f"SET statement_timeout = {max(1, round(self.statement_timeout * 1000))}")
        self._conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        from pgvector.psycopg import register_vector

        register_vector(self._conn)
        # A wider HNSW search than pgvector's default 40: recall@10 >= 0.95 (bench/rag.py).
        self._conn.execute("SET hnsw.ef_search = 100")

    def close(self) -> None:
        self._conn.close()

    @staticmethod
    def _sql(sql: str, params=True) -> str:
        # psycopg reads %s placeholders only when parameters are given.
        return sql.replace("%", "%%").replace("?", "%s") if params else sql

    @contextmanager
    def _told(self):
        """A statement cancelled by the timeout, or a lost server, as one line."""
        import psycopg

        try:
            yield
        except psycopg.errors.QueryCanceled:
            raise PmlError(f"a PostgreSQL statement ran past {self.statement_timeout:g} s "
                           f"({STATEMENT_TIMEOUT[0]})") from None
        except psycopg.OperationalError as exc:
            raise PmlError(f"PostgreSQL at {redact(self.url)}: {_first_line(exc)}") from None

    def _execute(self, sql, params):
        with self._told():
            self._conn.execute(self._sql(sql, params), params or None)

    def executemany(self, sql: str, rows) -> None:
        with self._told(), self._conn.cursor() as cursor:
            cursor.executemany(self._sql(sql), list(rows))

    def _fetchall(self, sql, params):
        with self._told():
            return self._conn.execute(self._sql(sql, params), params or None).fetchall()

    def insert(self, sql: str, params: tuple | list = ()) -> int:
        with self._told():
            return self._conn.execute(self._sql(sql, params) + " RETURNING id", params or None).fetchone()["id"]

    def script(self, sql: str) -> None:
        for statement in _statements(sql):
            self._conn.execute(statement)

    def lock_row(self, table: str, row_id: int) -> None:
        self._conn.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE", (row_id,))

    def lock_migrations(self) -> None:
        # A transaction-level advisory lock: released at COMMIT or ROLLBACK.
        self._conn.execute("SELECT pg_advisory_xact_lock(7254119)")

    def _begin(self):
        self._conn.execute("BEGIN")

    def _commit(self):
        self._conn.execute("COMMIT")

    def _rollback(self):
        self._conn.execute("ROLLBACK")


def _statements(sql: str) -> list[str]:
    """Split a migration on ';' at line ends (trigger bodies keep their inner ';')."""
    statements, current = [], []
    depth = 0
    for line in sql.splitlines():
        stripped = line.strip()
        current.append(line)
        upper = stripped.upper()
        if upper.startswith("CREATE TRIGGER"):
            depth += 1
        if upper.startswith("END;") or upper == "END;":
            depth -= 1
        if stripped.endswith(";") and depth == 0:
            statements.append("\n".join(current).strip().rstrip(";"))
            current = []
    tail = "\n".join(current).strip()
    if tail:
        statements.append(tail)
    return [s for s in statements if s]


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "connection failed"


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (0 < value < math.inf):
        raise PmlError(f"{name} must be a number of seconds above 0, not {raw!r}")
    return value


def database_url() -> str | None:
    return os.environ.get("PML_DATABASE_URL") or None


def open_database(target: str | Path | None = None) -> Database:
    """The database named by `target` (a PostgreSQL URL or a SQLite path), else
    `PML_DATABASE_URL`, else the SQLite file in `$PML_HOME`; migrated to the latest schema."""
    origin = None
    if not target:
        target, origin = database_url(), "PML_DATABASE_URL"
    if not target:
        target, origin = database_path(), None
    parsed = parse_target(target, origin)
    db: Database = PostgresDatabase(parsed) if isinstance(parsed, str) else SQLiteDatabase(parsed)
    migrate(db)
    return db
