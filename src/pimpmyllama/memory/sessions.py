"""Sessions: named conversations stored in the database, one row per turn.

A turn (the user's message and the reply) is written in one statement once the
reply has ended, so a crash or a kill never leaves half a turn. A reply cut
short by Ctrl-C is stored with status 'interrupted'.

`window_start` is the rolling window's edge: turns before it have left the
context for good (the packer is only offered the turns after it), so a turn
that was dropped never comes back into the window.
"""

import json
from dataclasses import dataclass

from pimpmyllama.errors import InvalidInputError, NotFoundError
from pimpmyllama.memory.forgetting import forget_session
from pimpmyllama.names import check_name
from pimpmyllama.prompting.packer import Turn
from pimpmyllama.storage.db import Database, utc_now


@dataclass
class Session:
    id: int
    name: str
    build: str | None
    system: str | None  # a /system override; None means the build's
    window_start: int
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class SessionSummary:
    """A line of `pml sessions list`."""

    name: str
    build: str | None
    created_at: str
    updated_at: str
    turns: int


@dataclass
class StoredTurn:
    index: int
    user: str
    reply: str
    status: str
    finish_reason: str | None
    model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    created_at: str

    def as_turn(self) -> Turn:
        return Turn(self.index, self.user, self.reply)


@dataclass
class Pin:
    id: int
    text: str


_TURN_COLUMNS = (
    "idx AS \"index\", user_message AS user, reply, status, finish_reason, model, prompt_tokens, "
    "completion_tokens, created_at"
)


class SessionStore:
    def __init__(self, db: Database):
        self.db = db

    # sessions -----------------------------------------------------------------
    def get(self, name: str) -> Session:
        row = self.db.query_one("SELECT * FROM sessions WHERE name = ?", (name,))
        if row is None:
            raise NotFoundError(f"unknown session {name!r} (see `pml sessions list`)")
        return Session(**row)

    def find(self, name: str) -> Session | None:
        row = self.db.query_one("SELECT * FROM sessions WHERE name = ?", (name,))
        return Session(**row) if row else None

    def create(self, name: str, build: str | None) -> Session:
        check_name(name, "session")
        now = utc_now()
        self.db.execute(
            "INSERT INTO sessions (name, build, created_at, updated_at) VALUES (?, ?, ?, ?)",
            (name, build, now, now),
        )
        return self.get(name)

    def open(self, name: str, build: str | None) -> Session:
        """The named session, created if new."""
        return self.find(name) or self.create(name, build)

    def latest(self) -> Session | None:
        row = self.db.query_one("SELECT * FROM sessions ORDER BY updated_at DESC, id DESC LIMIT 1")
        return Session(**row) if row else None

    def summaries(self) -> list[SessionSummary]:
        rows = self.db.query(
            "SELECT s.name, s.build, s.created_at, s.updated_at, COUNT(t.id) AS turns "
            "FROM sessions s LEFT JOIN turns t ON t.session_id = s.id "
            "GROUP BY s.id, s.name, s.build, s.created_at, s.updated_at ORDER BY s.updated_at DESC"
        )
        return [SessionSummary(**r) for r in rows]

    def remove(self, name: str) -> None:
        session = self.get(name)
        with self.db.transaction():
            forget_session(self.db, session.id)
            self.db.execute("DELETE FROM sessions WHERE id = ?", (session.id,))

    def set_system(self, session: Session, system: str | None) -> None:
        self.db.execute("UPDATE sessions SET system = ?, updated_at = ? WHERE id = ?", (system, utc_now(), session.id))
        session.system = system

    def set_build(self, session: Session, build: str | None) -> None:
        self.db.execute("UPDATE sessions SET build = ? WHERE id = ?", (build, session.id))
        session.build = build

    # turns --------------------------------------------------------------------
    def turns(self, session: Session, since: int = 0) -> list[StoredTurn]:
        rows = self.db.query(
            f"SELECT {_TURN_COLUMNS} FROM turns WHERE session_id = ? AND idx >= ? ORDER BY idx",
            (session.id, since),
        )
        return [StoredTurn(**row) for row in rows]

    def window(self, session: Session) -> list[StoredTurn]:
        """The turns still inside the rolling window."""
        return self.turns(session, since=session.window_start)

    def add_turn(self, session: Session, user: str, reply: str, *, status: str, finish_reason: str | None,
                 model: str | None, prompt_tokens: int | None, completion_tokens: int | None,
                 window_start: int | None = None) -> int:
        """Store a finished exchange and move the window's edge, in one transaction."""
        with self.db.transaction():
            self.db.lock_row("sessions", session.id)
            row = self.db.query_one("SELECT COALESCE(MAX(idx), -1) + 1 AS next FROM turns WHERE session_id = ?",
                                    (session.id,))
            index = row["next"]
            now = utc_now()
            self.db.execute(
                "INSERT INTO turns (session_id, idx, user_message, reply, status, finish_reason, model, "
                "prompt_tokens, completion_tokens, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (session.id, index, user, reply, status, finish_reason, model, prompt_tokens, completion_tokens, now),
            )
            start = session.window_start if window_start is None else max(session.window_start, window_start)
            self.db.execute("UPDATE sessions SET window_start = ?, updated_at = ? WHERE id = ?",
                            (start, now, session.id))
        session.window_start = start
        session.updated_at = now
        return index

    def reset(self, session: Session) -> int:
        """Forget the conversation and its long-term memories (system prompt and pins
        stay); return how many turns went."""
        with self.db.transaction():
            forget_session(self.db, session.id)
            count = self.db.query_one("SELECT COUNT(*) AS n FROM turns WHERE session_id = ?", (session.id,))["n"]
            self.db.execute("DELETE FROM turns WHERE session_id = ?", (session.id,))
            self.db.execute("UPDATE sessions SET window_start = 0, updated_at = ? WHERE id = ?", (utc_now(), session.id))
        session.window_start = 0
        return count

    # pins ---------------------------------------------------------------------
    def pins(self, session: Session) -> list[Pin]:
        rows = self.db.query("SELECT id, text FROM pins WHERE session_id = ? ORDER BY id", (session.id,))
        return [Pin(**row) for row in rows]

    def pin(self, session: Session, text: str) -> None:
        self.db.execute("INSERT INTO pins (session_id, text, created_at) VALUES (?, ?, ?)",
                        (session.id, text, utc_now()))

    def unpin(self, session: Session, number: int) -> str:
        """Remove the pin shown as `number` (1-based, in the listed order)."""
        pins = self.pins(session)
        if not 1 <= number <= len(pins):
            raise InvalidInputError(f"no pin number {number} (there are {len(pins)})")
        pin = pins[number - 1]
        self.db.execute("DELETE FROM pins WHERE id = ?", (pin.id,))
        return pin.text

    # export -------------------------------------------------------------------
    def export(self, name: str, fmt: str = "json") -> str:
        session = self.get(name)
        turns = self.turns(session)
        if fmt == "json":
            return json.dumps(
                {
                    "name": session.name,
                    "build": session.build,
                    "system": session.system,
                    "created_at": session.created_at,
                    "pins": [p.text for p in self.pins(session)],
                    "turns": [t.__dict__ for t in turns],
                },
                indent=2,
                ensure_ascii=False,
            )
        if fmt == "markdown":
            lines = [f"# Session {session.name}", ""]
            for t in turns:
                mark = " *(interrupted)*" if t.status == "interrupted" else ""
                lines += [f"**User:** {t.user}", "", f"**Assistant:**{mark} {t.reply}", ""]
            return "\n".join(lines)
        raise InvalidInputError(f"unknown export format {fmt!r} (json, markdown)")
