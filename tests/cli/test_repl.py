"""`pml chat` driven through a test runner: what the screen shows, what the database holds."""

import json

from pimpmyllama.memory.sessions import SessionStore
from pimpmyllama.storage.db import open_database


def rows(sql):
    return open_database().query(sql)


def test_a_scripted_chat(run, fake_engine, pml_home):
    fake_engine.replies.extend(["The post office opens at 9am.", "You are welcome."])
    script = "\n".join([
        "When does the post office open?",
        "/pin The hairdresser opens at 9:30am.",
        "/system Be brief.",
        "Thanks!",
        "/context",
        "/pins",
        "/unpin 1",
        "/nonsense",
        "/exit",
    ]) + "\n"
    result = run("chat", "--session", "s1", input=script)
    assert result.exit_code == 0, result.output
    screen = result.output
    assert "session s1" in screen
    assert "The post office opens at 9am." in screen and "You are welcome." in screen
    assert "pinned #1" in screen and "system prompt set" in screen
    assert "1. The hairdresser opens at 9:30am." in screen
    assert "unpinned: The hairdresser opens at 9:30am." in screen
    assert "error: unknown command /nonsense (try /help)" in screen
    # /context: a row per section with its token count, and the turns sent
    for section in ("system", "pinned", "history", "message", "total"):
        assert section in screen
    assert "turns sent: #0–#1" in screen
    # the second prompt carried the pin, the new system prompt and the first turn
    assert "Be brief.\n\nFacts to keep in mind:\n- The hairdresser opens at 9:30am." in fake_engine.prompts[1]
    assert "When does the post office open?" in fake_engine.prompts[1]
    assert rows("SELECT idx, user_message, reply, status FROM turns ORDER BY idx") == [
        {"idx": 0, "user_message": "When does the post office open?", "reply": "The post office opens at 9am.",
         "status": "complete"},
        {"idx": 1, "user_message": "Thanks!", "reply": "You are welcome.", "status": "complete"},
    ]
    assert rows("SELECT name, system FROM sessions") == [{"name": "s1", "system": "Be brief."}]
    assert rows("SELECT text FROM pins") == []


def test_ctrl_c_during_a_reply_keeps_the_turn_marked_interrupted(run, fake_engine, pml_home):
    fake_engine.replies.extend([("The post office", KeyboardInterrupt()), "Still here."])
    result = run("chat", "--session", "s2", input="When?\nAre you there?\n/exit\n")
    assert result.exit_code == 0, result.output
    assert "[interrupted]" in result.output and "Still here." in result.output
    assert rows("SELECT user_message, reply, status FROM turns ORDER BY idx") == [
        {"user_message": "When?", "reply": "The post office", "status": "interrupted"},
        {"user_message": "Are you there?", "reply": "Still here.", "status": "complete"},
    ]


def test_resuming_a_session_resends_its_history_and_reset_forgets_it(run, fake_engine, pml_home):
    fake_engine.replies.extend(["first", "second", "third"])
    run("chat", "--session", "s3", input="one\n/exit\n")
    result = run("chat", "--session", "s3", input="two\n/reset\nthree\n/exit\n")
    assert "conversation reset (2 turns forgotten)" in result.output
    assert "one" in fake_engine.prompts[1] and "one" not in fake_engine.prompts[2]
    assert [r["user_message"] for r in rows("SELECT user_message FROM turns ORDER BY idx")] == ["three"]


def test_multi_line_messages_and_end_of_input(run, fake_engine, pml_home):
    result = run("chat", "--session", "s4", input='"""\nline one\nline two\n"""\n')
    assert result.exit_code == 0
    assert rows("SELECT user_message FROM turns") == [{"user_message": "line one\nline two"}]


def test_a_message_too_long_is_refused_and_the_chat_goes_on(run, fake_engine, pml_home):
    result = run("chat", "--session", "s5", input="hello " * 1000 + "\nshort\n/exit\n")
    assert "error: the prompt needs" in result.output
    assert [r["user_message"] for r in rows("SELECT user_message FROM turns")] == ["short"]


def test_ask_prints_the_reply_and_json(run, fake_engine, pml_home):
    fake_engine.replies.extend(["At 9am.", "At 9am again."])
    result = run("ask", "When does the post office open?")
    assert result.exit_code == 0 and result.output.strip() == "At 9am."
    result = run("ask", "--json", "--show-context", "When?")
    payload = json.loads(result.output)
    assert payload["reply"] == "At 9am again." and payload["finish_reason"] == "stop"
    assert payload["model"] == "fake" and payload["session"] is None
    sections = {s["name"]: s for s in payload["context"]["sections"]}
    assert sections["message"]["tokens"] == fake_engine.tokenizer.count("When?")
    assert payload["context"]["total_tokens"] <= payload["context"]["budget"]
    assert rows("SELECT * FROM turns") == []  # one-shot asks are not stored


def test_ask_reads_the_question_from_stdin_and_continues_a_session(run, fake_engine, pml_home):
    fake_engine.replies.extend(["first", "second"])
    assert run("ask", "--session", "s6", "-", input="from stdin\n").exit_code == 0
    assert run("ask", "--session", "s6", "and again").exit_code == 0
    assert "from stdin" in fake_engine.prompts[1]
    store = SessionStore(open_database())
    assert [t.user for t in store.turns(store.get("s6"))] == ["from stdin", "and again"]


def test_sessions_commands(run, fake_engine, pml_home, tmp_path):
    fake_engine.replies.extend(["hi there"])
    run("chat", "--session", "s7", input="hello\n/exit\n")
    listing = run("sessions", "list").output
    assert "s7" in listing
    shown = run("sessions", "show", "s7").output
    assert "hello" in shown and "hi there" in shown
    out = tmp_path / "s7.md"
    assert run("sessions", "export", "s7", "--format", "markdown", "-o", str(out)).exit_code == 0
    assert "**User:** hello" in out.read_text()
    assert json.loads(run("sessions", "export", "s7").output)["turns"][0]["reply"] == "hi there"
    assert run("sessions", "rm", "s7").exit_code == 0
    result = run("sessions", "show", "s7")
    assert result.exit_code == 2


def test_models_and_builds_commands(run, stored_tiny, pml_home, tmp_path):
    assert "tiny" in run("models", "list").output
    shown = run("models", "show", "tiny").output
    assert "llama" in shown and "chat template" in shown and "yes" in shown
    assert json.loads(run("models", "show", "tiny", "--json").output)["context_length"] == 512
    build = tmp_path / "b.yml"
    build.write_text("from: tiny\nsystem: Be brief.\n")
    assert run("create", "brief", "-f", str(build)).exit_code == 0
    assert "brief" in run("builds", "list").output
    assert "system: Be brief." in run("builds", "show", "brief").output
    assert run("builds", "rm", "brief").exit_code == 0
    assert run("models", "rm", "tiny").exit_code == 0
    assert "tiny" not in run("models", "list").output
