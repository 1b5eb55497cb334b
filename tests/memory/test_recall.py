"""Long-term memory: evicted turns are embedded and recalled (both database engines)."""

import pytest

from fakes import FakeEngine
from pimpmyllama.chat.conversation import Conversation
from pimpmyllama.memory.sessions import SessionStore
from pimpmyllama.prompting.build import Build

FILLER = ["Tell me about the weather.", "What is a good book?", "Do you like trains?", "Name a color."]


def small_window_build(memory: bool) -> Build:
    return Build.model_validate({
        "from": "tiny",
        "parameters": {"num_ctx": 300, "max_new_tokens": 20},
        "memory": {"enabled": memory, "recall_k": 2, "share": 0.4},
    })


def chat(db, tiny_model, memory=True, turns=12):
    sessions = SessionStore(db)
    session = sessions.create("s", None)
    engine = FakeEngine(tiny_model, context_length=4096)
    conv = Conversation(engine, small_window_build(memory), sessions=sessions, session=session)
    conv.send("My locker code is 4172.").text()
    for i in range(turns):
        conv.send(FILLER[i % len(FILLER)]).text()
    return conv, engine


def test_evicted_turns_are_remembered_and_recalled(db, tiny_model):
    conv, engine = chat(db, tiny_model)
    assert conv.session.window_start > 0
    stored = conv.memories()
    assert [m.turn_idx for m in stored] == list(range(conv.session.window_start))
    assert stored[0].text == "User: My locker code is 4172.\nAssistant: ok"
    rows = db.query("SELECT turn_idx, embedder, dim FROM memories ORDER BY turn_idx")
    assert rows[0] == {"turn_idx": 0, "embedder": "all-minilm-l6-v2", "dim": 384}
    assert db.query_one("SELECT COUNT(*) AS n FROM vec_memories_384")["n"] == len(stored)
    reply = conv.send("What is my locker code?")
    reply.text()
    assert reply.context.recalled[0].source == "turn #0"
    assert "From earlier in this conversation:\n- User: My locker code is 4172." in engine.prompts[-1]
    assert 0 not in reply.context.kept_turns  # it came back as a memory, not as history


def test_without_long_term_memory_the_fact_is_gone(db, tiny_model):
    conv, engine = chat(db, tiny_model, memory=False)
    reply = conv.send("What is my locker code?")
    reply.text()
    assert "4172" not in engine.prompts[-1]
    assert db.query("SELECT * FROM memories") == []


def test_irrelevant_memories_are_not_recalled(db, tiny_model):
    conv, engine = chat(db, tiny_model)
    reply = conv.send("Quelle est la capitale de la Mongolie ?")
    reply.text()
    assert all(p.source != "turn #0" for p in reply.context.recalled)


def test_forget_reset_and_remove_clear_memories_and_vectors(db, tiny_model):
    conv, _ = chat(db, tiny_model)
    count = len(conv.memories())
    forgotten = conv.forget(1)
    assert forgotten.turn_idx == 0
    assert len(conv.memories()) == count - 1
    assert db.query_one("SELECT COUNT(*) AS n FROM vec_memories_384")["n"] == count - 1
    from pimpmyllama.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="no memory number 99"):
        conv.forget(99)
    conv.reset()
    assert conv.memories() == []
    assert db.query_one("SELECT COUNT(*) AS n FROM vec_memories_384")["n"] == 0
    conv.send("My locker code is 4172.").text()
    for text in FILLER * 3:
        conv.send(text).text()
    assert conv.memories()
    SessionStore(db).remove("s")
    assert db.query("SELECT * FROM memories") == []
    assert db.query_one("SELECT COUNT(*) AS n FROM vec_memories_384")["n"] == 0
