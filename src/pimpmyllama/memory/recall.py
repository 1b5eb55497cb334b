"""Long-term memory: turns that left the rolling window are embedded, and recalled
when a new message is about them (Memento's tattoos)."""

from dataclasses import dataclass

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.memory.forgetting import forget_session  # noqa: F401 (part of this module's API)
from pimpmyllama.memory.sessions import Session, StoredTurn
from pimpmyllama.storage.db import Database, utc_now
from pimpmyllama.storage.vectors import vector_table

MIN_SIMILARITY = 0.25  # below this a memory is about something else (MiniLM cosine)


@dataclass
class Memory:
    id: int
    turn_idx: int
    text: str
    similarity: float | None = None


def memory_text(turn: StoredTurn) -> str:
    return f"User: {turn.user}\nAssistant: {turn.reply}"


class MemoryStore:
    def __init__(self, db: Database, embedder):
        self.db = db
        self.embedder = embedder
        self._vectors = vector_table(db, "memories", embedder.dim)
        self._vectors.ensure()

    def index(self, session: Session, turns: list[StoredTurn]) -> int:
        """Embed the turns not remembered yet; return how many were added."""
        known = {r["turn_idx"] for r in self.db.query("SELECT turn_idx FROM memories WHERE session_id = ?",
                                                      (session.id,))}
        new = [t for t in turns if t.index not in known]
        if not new:
            return 0
        texts = [memory_text(t) for t in new]
        vectors = self.embedder.encode(texts)
        with self.db.transaction():
            ids = [
                self.db.insert(
                    "INSERT INTO memories (session_id, turn_idx, text, embedder, dim, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (session.id, t.index, text, self.embedder.name, self.embedder.dim, utc_now()),
                )
                for t, text in zip(new, texts)
            ]
            self._vectors.add(ids, session.id, vectors)
        return len(new)

    def recall(self, session: Session, query: str, k: int) -> list[Memory]:
        """The memories nearest the query, most similar first, above a relevance floor."""
        if k < 1 or not self.db.query_one("SELECT 1 AS x FROM memories WHERE session_id = ? LIMIT 1", (session.id,)):
            return []
        vector = self.embedder.encode([query])[0]
        ids = [r["id"] for r in self.db.query(
            "SELECT id FROM memories WHERE session_id = ? AND embedder = ?", (session.id, self.embedder.name))]
        hits = [(i, s) for i, s in self._vectors.search(session.id, vector, k, among=ids) if s >= MIN_SIMILARITY]
        rows = {r["id"]: r for r in self._rows(session, [i for i, _ in hits])}
        return [Memory(i, rows[i]["turn_idx"], rows[i]["text"], s) for i, s in hits if i in rows]

    def _rows(self, session: Session, ids: list[int]) -> list[dict]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        return self.db.query(f"SELECT id, turn_idx, text FROM memories WHERE session_id = ? AND id IN ({marks})",
                             [session.id, *ids])

    def list(self, session: Session) -> list[Memory]:
        rows = self.db.query("SELECT id, turn_idx, text FROM memories WHERE session_id = ? ORDER BY turn_idx",
                             (session.id,))
        return [Memory(r["id"], r["turn_idx"], r["text"]) for r in rows]

    def forget(self, session: Session, number: int) -> Memory:
        """Remove the memory shown as `number` (1-based) by `list`."""
        memories = self.list(session)
        if not 1 <= number <= len(memories):
            raise InvalidInputError(f"no memory number {number} (there are {len(memories)})")
        memory = memories[number - 1]
        with self.db.transaction():
            self._vectors.delete([memory.id])
            self.db.execute("DELETE FROM memories WHERE id = ?", (memory.id,))
        return memory
