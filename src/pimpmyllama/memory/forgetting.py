"""Forgetting a session's long-term memories (what `/reset` and `sessions rm` do)."""

from pimpmyllama.storage.db import Database
from pimpmyllama.storage.vectors import vector_table


def forget_session(db: Database, session_id: int) -> None:
    """Remove every memory of a session, vectors included (they have no foreign key)."""
    with db.transaction():
        for row in db.query("SELECT DISTINCT dim FROM memories WHERE session_id = ?", (session_id,)):
            vector_table(db, "memories", row["dim"]).delete_part(session_id)
        db.execute("DELETE FROM memories WHERE session_id = ?", (session_id,))
