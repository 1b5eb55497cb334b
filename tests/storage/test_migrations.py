from pimpmyllama.storage.db import Database, open_database
from pimpmyllama.storage.migrations import MIGRATIONS, migrate


def test_migrations_apply_once_and_are_recorded(tmp_path):
    db = Database(tmp_path / "a.db")
    assert migrate(db) == [v for v, _, _ in MIGRATIONS]
    assert migrate(db) == []
    rows = db.query("SELECT version, name FROM schema_migrations ORDER BY version")
    assert [(r["version"], r["name"]) for r in rows] == [(v, n) for v, n, _ in MIGRATIONS]
    tables = {r["name"] for r in db.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"sessions", "turns", "pins"} <= tables


def test_numbers_are_unique_and_increasing():
    versions = [v for v, _, _ in MIGRATIONS]
    assert versions == sorted(set(versions)) and versions[0] == 1


def test_a_failed_transaction_leaves_no_rows(tmp_path):
    db = open_database(tmp_path / "b.db")
    try:
        with db.transaction():
            db.execute("INSERT INTO sessions (name, created_at, updated_at) VALUES ('x', 'now', 'now')")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert db.query("SELECT * FROM sessions") == []
    assert db.query_one("PRAGMA journal_mode")["journal_mode"] == "wal"
