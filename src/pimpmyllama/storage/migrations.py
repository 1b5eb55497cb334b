"""Numbered schema migrations, each applied once and recorded in `schema_migrations`.

Column types are written with placeholders ({pk}) that each engine fills in, so
one list of migrations serves every database engine.
"""

from pimpmyllama.storage.db import Database, utc_now

_TYPES = {
    "sqlite": {"pk": "INTEGER PRIMARY KEY AUTOINCREMENT"},
}

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "sessions",
        """
        CREATE TABLE sessions (
            id {pk},
            name TEXT NOT NULL UNIQUE,
            build TEXT,
            system TEXT,
            window_start INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE turns (
            id {pk},
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            user_message TEXT NOT NULL,
            reply TEXT NOT NULL,
            status TEXT NOT NULL,
            finish_reason TEXT,
            model TEXT,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            created_at TEXT NOT NULL,
            UNIQUE (session_id, idx)
        );
        CREATE TABLE pins (
            id {pk},
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            text TEXT NOT NULL,
            created_at TEXT NOT NULL
        )
        """,
    ),
]


def migrate(db: Database) -> list[int]:
    """Apply the migrations not applied yet; return their numbers."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    applied = []
    types = _TYPES[db.dialect]
    done = {row["version"] for row in db.query("SELECT version FROM schema_migrations")}
    for version, name, sql in MIGRATIONS:
        if version in done:
            continue
        with db.transaction():
            # Checked inside the transaction: another process may have just applied it.
            if db.query_one("SELECT 1 AS done FROM schema_migrations WHERE version = ?", (version,)):
                continue
            db.executescript(sql.format(**types))
            db.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (version, name, utc_now()),
            )
            applied.append(version)
    return applied
