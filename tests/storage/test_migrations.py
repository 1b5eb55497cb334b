from pimpmyllama.storage.db import SQLiteDatabase, open_database
from pimpmyllama.storage.migrations import MIGRATIONS, migrate


def tables(db) -> set[str]:
    if db.dialect == "sqlite":
        return {r["name"] for r in db.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return {r["tablename"] for r in db.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def test_migrations_apply_once_and_are_recorded(db):
    # `db` was migrated when opened: a second run applies nothing.
    assert migrate(db) == []
    rows = db.query("SELECT version, name FROM schema_migrations ORDER BY version")
    assert [(r["version"], r["name"]) for r in rows] == [(m.version, m.name) for m in MIGRATIONS]
    assert {"sessions", "turns", "pins"} <= tables(db)


def test_a_fresh_sqlite_file_gets_every_migration(tmp_path):
    db = SQLiteDatabase(tmp_path / "a.db")
    assert migrate(db) == [m.version for m in MIGRATIONS]


def test_numbers_are_unique_and_increasing():
    versions = [m.version for m in MIGRATIONS]
    assert versions == sorted(set(versions)) and versions[0] == 1


def test_a_failed_transaction_leaves_no_rows(db):
    try:
        with db.transaction():
            db.execute("INSERT INTO sessions (name, created_at, updated_at) VALUES ('x', 'now', 'now')")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert db.query("SELECT * FROM sessions") == []


def test_sqlite_runs_in_wal_mode_with_sqlite_vec(tmp_path):
    db = open_database(tmp_path / "b.db")
    assert db.query_one("PRAGMA journal_mode")["journal_mode"] == "wal"
    assert db.query_one("SELECT vec_version() AS v")["v"].startswith("v0.1")
