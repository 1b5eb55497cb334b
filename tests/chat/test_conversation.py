"""A conversation's turns: what is sent, what is stored, what the window keeps."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakes import FakeEngine
from pimpmyllama.chat.conversation import Conversation
from pimpmyllama.memory.sessions import SessionStore
from pimpmyllama.prompting.build import Build
from pimpmyllama.storage.db import open_database


def conversation(tmp_path, tiny_model, build=None, replies=()):
    store = SessionStore(open_database(tmp_path / "pml.db"))
    session = store.create("s", None)
    engine = FakeEngine(tiny_model, replies)
    build = build or Build.model_validate({"from": "tiny", "system": "Be brief."})
    return Conversation(engine, build, sessions=store, session=session), engine, store


def test_each_turn_resends_system_and_history_and_is_stored(tmp_path, tiny_model):
    conv, engine, store = conversation(tmp_path, tiny_model, replies=["first answer", "second answer"])
    assert conv.send("one").text() == "first answer"
    reply = conv.send("two")
    assert reply.text() == "second answer"
    assert engine.prompts[1] == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\none<|im_end|>\n"
        "<|im_start|>assistant\nfirst answer<|im_end|>\n<|im_start|>user\ntwo<|im_end|>\n<|im_start|>assistant\n"
    )
    rows = store.db.query("SELECT idx, user_message, reply, status FROM turns ORDER BY idx")
    assert rows == [
        {"idx": 0, "user_message": "one", "reply": "first answer", "status": "complete"},
        {"idx": 1, "user_message": "two", "reply": "second answer", "status": "complete"},
    ]


def test_an_interrupted_reply_is_stored_marked_and_whole(tmp_path, tiny_model):
    conv, engine, store = conversation(tmp_path, tiny_model, replies=[("the post office", KeyboardInterrupt())])
    reply = conv.send("when?")
    got = []
    try:
        for piece in reply:
            got.append(piece)
    except KeyboardInterrupt:
        pass
    assert "".join(got) == "the post office"
    row = store.db.query_one("SELECT user_message, reply, status, finish_reason FROM turns")
    assert row == {"user_message": "when?", "reply": "the post office", "status": "interrupted",
                   "finish_reason": "interrupted"}


def test_system_override_and_pins_reach_the_prompt(tmp_path, tiny_model):
    build = Build.model_validate({"from": "tiny", "system": "Be brief.", "pinned": ["Build fact."]})
    conv, engine, store = conversation(tmp_path, tiny_model, build=build)
    conv.set_system("Be polite.")
    conv.pin("Session fact.")
    conv.send("hi").text()
    assert "<|im_start|>system\nBe polite.\n\nFacts to keep in mind:\n- Build fact.\n- Session fact.<|im_end|>" in engine.prompts[0]
    assert conv.unpin(2) == "Session fact."
    conv.set_system(None)  # back to the build's
    conv.send("hi").text()
    assert "<|im_start|>system\nBe brief.\n\nFacts to keep in mind:\n- Build fact.<|im_end|>" in engine.prompts[1]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lengths=st.lists(st.integers(1, 60), min_size=5, max_size=30))
def test_a_turn_that_left_the_window_never_comes_back(tmp_path_factory, tiny_model, lengths):
    # Long and short messages alternate: a short message after a long one has room
    # for more history, yet turns that were dropped must stay out.
    tmp = tmp_path_factory.mktemp("window")
    build = Build.model_validate({"from": "tiny", "system": "Be brief.",
                                  "parameters": {"num_ctx": 200, "max_new_tokens": 20}})
    conv, engine, store = conversation(tmp, tiny_model, build=build, replies=["fine thanks"] * len(lengths))
    oldest = 0
    for i, n in enumerate(lengths):
        reply = conv.send(" ".join(["hello"] * n))
        reply.text()
        kept = reply.context.kept_turns
        assert reply.context.total_tokens <= 180
        if kept:
            assert kept[0] >= oldest and kept == list(range(kept[0], i))
            oldest = kept[0]
        elif i:
            oldest = i
