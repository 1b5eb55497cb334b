"""`pml kb` as a user drives it (SQLite in PML_HOME), and knowledge in chat."""

import json

from seed_data import QUERY, write_seed


def test_create_add_search_show_rm(run, pml_home, tmp_path):
    seed = write_seed(tmp_path / "seed")
    (seed / "notes.bin").write_bytes(b"\x00\x01")
    (seed / "empty.md").write_text("")
    assert run("kb", "create", "seed").exit_code == 0
    result = run("kb", "add", "seed", str(seed), str(tmp_path / "missing.txt"))
    assert result.exit_code == 0, result.output
    assert "4 added, 0 updated, 0 unchanged, 2 skipped" in result.output
    assert "skipped " in result.output and "empty.md: empty file" in result.output
    assert "missing.txt: does not exist" in result.output
    # .bin is not a supported type, so a folder walk does not even offer it
    assert "notes.bin" not in result.output
    out = run("kb", "search", "seed", QUERY, "-k", "2").output
    assert out.index("poste.txt#0") < out.index("coiffeur.txt#0")
    assert "Le bureau de poste ouvre à 9h." in out and "cosine 0.83" in out
    hits = json.loads(run("kb", "search", "seed", QUERY, "--json", "--filter", "source=pi*").output)
    assert [h["source"].rsplit("/", 1)[1] for h in hits] == ["piscine.txt"]
    shown = run("kb", "show", "seed").output
    assert "4 documents · 4 chunks" in shown and "all-minilm-l6-v2 (384 dims)" in shown
    assert "seed" in run("kb", "list").output
    assert "removed 1 document(s)" in run("kb", "rm", "seed", "raviolis.txt").output
    assert "3 documents" in run("kb", "show", "seed").output
    assert run("kb", "rm", "seed").exit_code == 0
    assert run("kb", "show", "seed").exit_code == 2


def test_kb_errors_are_one_line(run, pml_home):
    result = run("kb", "search", "nope", "x")
    assert result.exit_code == 2 and "error: unknown knowledge base 'nope'" in result.output
    run("kb", "create", "b")
    result = run("kb", "search", "b", "x", "--filter", "author=me")
    assert result.exit_code == 2 and "unknown filter field 'author'" in result.output
    result = run("kb", "create", "c", "--chunk-size", "1000")
    assert result.exit_code == 2 and "exceeds what all-minilm-l6-v2 embeds whole (256 tokens)" in result.output
    result = run("kb", "create", "d", "--embedder", "/no/such/model")
    assert result.exit_code == 2 and "unknown embedder '/no/such/model'" in result.output
    result = run("kb", "create", "b")
    assert result.exit_code == 2 and "already exists" in result.output


def test_eval_reports_recall_and_mrr(run, pml_home, tmp_path):
    seed = write_seed(tmp_path / "seed")
    run("kb", "create", "seed")
    run("kb", "add", "seed", str(seed))
    questions = tmp_path / "q.jsonl"
    questions.write_text("\n".join(json.dumps(q) for q in [
        {"question": QUERY, "source": "poste.txt"},
        {"question": "Faut-il un bonnet à la piscine ?", "answer": "bonnet de bain"},
        {"question": "Qu'ai-je mangé hier soir ?", "source": "raviolis.txt"},
    ]))
    out = run("kb", "eval", "seed", str(questions), "-k", "1").output
    assert "3 questions · recall@1 1.000 · MRR@1 1.000" in out
    questions.write_text(json.dumps({"question": "x"}))
    result = run("kb", "eval", "seed", str(questions))
    assert result.exit_code == 2 and "needs an expected 'source' or 'answer'" in result.output


def test_chat_with_a_knowledge_base_cites_its_sources(run, fake_engine, pml_home, tmp_path):
    seed = write_seed(tmp_path / "seed")
    run("kb", "create", "seed")
    run("kb", "add", "seed", str(seed))
    fake_engine.replies.extend(["Il ouvre à 9h [1].", "ok"])
    result = run("chat", "--kb", "seed", "--session", "k1", input=f"{QUERY}\n/context\n/exit\n")
    assert result.exit_code == 0, result.output
    prompt = fake_engine.prompts[0]
    assert "---------------------\nLe bureau de poste ouvre à 9h.\n---------------------" in prompt
    assert prompt.index("Le bureau de poste") < prompt.index(f"Query: {QUERY}")
    assert "Sources:" in result.output and "[1] " in result.output and "poste.txt#0" in result.output
    # the stored turn holds the user's words, not the passages
    from pimpmyllama.storage.db import open_database

    assert open_database().query("SELECT user_message FROM turns") == [{"user_message": QUERY}]


def test_ask_json_lists_sources_and_an_unknown_base_fails_first(run, fake_engine, pml_home, tmp_path):
    run("kb", "create", "seed")
    run("kb", "add", "seed", str(write_seed(tmp_path / "seed")))
    payload = json.loads(run("ask", "--kb", "seed", "--json", QUERY).output)
    assert payload["sources"][0]["label"] == "[1] (poste.txt)"
    assert payload["sources"][0]["score"] > 0.8
    result = run("ask", "--kb", "nope", "hello")
    assert result.exit_code == 2 and "unknown knowledge base 'nope'" in result.output
    assert len(fake_engine.prompts) == 1


def test_a_base_queried_with_another_embedder_says_how_to_reindex(run, pml_home, tmp_path):
    import shutil

    from pimpmyllama.models.defaults import bundled_default_embedder

    other = tmp_path / "other-embedder"
    shutil.copytree(bundled_default_embedder(), other)
    run("kb", "create", "seed")
    run("kb", "add", "seed", str(write_seed(tmp_path / "seed")))
    result = run("kb", "search", "seed", QUERY, "--embedder", str(other))
    assert result.exit_code == 2
    assert f"re-index it with `pml kb reindex seed --embedder {other}`" in result.output.replace("\n", "")
    result = run("kb", "reindex", "seed", "--embedder", str(other))
    assert result.exit_code == 0 and "re-indexed 4 chunks" in result.output
    out = run("kb", "search", "seed", QUERY, "--embedder", str(other), "-k", "1").output
    assert "poste.txt#0" in out


def test_memory_commands_in_the_repl(run, fake_engine, pml_home, tmp_path):
    build = tmp_path / "small.yml"
    build.write_text("from: tiny\nparameters: {num_ctx: 300, max_new_tokens: 20}\nmemory: {share: 0.4}\n")
    lines = ["My locker code is 4172."] + ["Tell me about the weather."] * 10 + ["/memory", "/forget 1", "/memory", "/exit"]
    result = run("chat", str(build), "--session", "m1", input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    assert "1. (turn #0) User: My locker code is 4172. · Assistant: ok" in result.output
    assert "forgot turn #0" in result.output
    from pimpmyllama.storage.db import open_database

    db = open_database()
    assert db.query_one("SELECT COUNT(*) AS n FROM memories WHERE turn_idx = 0")["n"] == 0
    assert db.query_one("SELECT COUNT(*) AS n FROM memories")["n"] > 0
