import json

import pytest

from pimpmyllama.errors import InvalidInputError, NotFoundError
from pimpmyllama.memory.sessions import SessionStore


@pytest.fixture
def store(db):
    return SessionStore(db)


def add(store, session, user, reply="ok", status="complete", window_start=None):
    return store.add_turn(session, user, reply, status=status, finish_reason="stop", model="m",
                          prompt_tokens=10, completion_tokens=2, window_start=window_start)


def test_turns_are_rows_with_their_numbers(store):
    s = store.create("s1", "town-hall")
    assert add(store, s, "hello", "hi there") == 0
    assert add(store, s, "again", "partial", status="interrupted") == 1
    rows = store.db.query("SELECT idx, user_message, reply, status, model FROM turns ORDER BY idx")
    assert rows == [
        {"idx": 0, "user_message": "hello", "reply": "hi there", "status": "complete", "model": "m"},
        {"idx": 1, "user_message": "again", "reply": "partial", "status": "interrupted", "model": "m"},
    ]
    assert [(r.name, r.build, r.turns) for r in store.summaries()] == [("s1", "town-hall", 2)]


def test_the_window_edge_only_moves_forward(store):
    s = store.create("s1", None)
    for i in range(4):
        add(store, s, f"q{i}")
    add(store, s, "q4", window_start=2)
    assert [t.index for t in store.window(s)] == [2, 3, 4]
    add(store, s, "q5", window_start=1)  # an older edge never brings turns back
    assert store.get("s1").window_start == 2
    assert [t.index for t in store.window(store.get("s1"))] == [2, 3, 4, 5]


def test_a_failed_write_stores_no_half_turn(store, monkeypatch):
    s = store.create("s1", None)
    real = store.db.execute

    def fail_on_update(sql, params=()):
        if sql.startswith("UPDATE sessions"):
            raise RuntimeError("disk full")
        return real(sql, params)

    monkeypatch.setattr(store.db, "execute", fail_on_update)
    with pytest.raises(RuntimeError):
        add(store, s, "lost", window_start=0)
    monkeypatch.undo()
    assert store.turns(s) == []


def test_reset_pins_system_and_remove(store):
    s = store.create("s1", None)
    add(store, s, "q0")
    store.pin(s, "fact one")
    store.pin(s, "fact two")
    store.set_system(s, "Be brief.")
    assert store.unpin(s, 1) == "fact one"
    with pytest.raises(InvalidInputError, match="no pin number 5"):
        store.unpin(s, 5)
    assert [p.text for p in store.pins(s)] == ["fact two"]
    assert store.reset(s) == 1 and store.turns(s) == []
    assert store.get("s1").system == "Be brief."
    store.remove("s1")
    with pytest.raises(NotFoundError, match="unknown session 's1'"):
        store.get("s1")
    assert store.db.query("SELECT * FROM pins") == []  # removed with their session


def test_export_json_and_markdown(store):
    s = store.create("s1", "b")
    add(store, s, "When?", "At 9am.")
    data = json.loads(store.export("s1"))
    assert data["name"] == "s1" and data["turns"][0]["user"] == "When?" and data["turns"][0]["reply"] == "At 9am."
    assert "**User:** When?" in store.export("s1", "markdown")
    with pytest.raises(InvalidInputError, match="unknown export format 'xml'"):
        store.export("s1", "xml")


def test_session_names_are_checked(store):
    with pytest.raises(InvalidInputError, match="invalid session name"):
        store.create("bad name!", None)
