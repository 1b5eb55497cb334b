"""Styles from the command line: `--style` on ask, styles in a build, and their errors
as a user sees them."""

import json

from cli_run import assert_one_line_error, pml

EXPERT_LAW = "Answer as an expert in law would, precisely and in the terms of the field."
BRIEF = "Answer briefly, in one or two sentences."


def test_ask_with_styles_sends_them_in_the_system_prompt(run, fake_engine, pml_home, tmp_path):
    build = tmp_path / "b.yml"
    build.write_text(f"from: {fake_engine.folder}\nsystem: You help the town hall.\nstyles: [brief]\n")
    result = run("ask", "--style", "expert:field=law", "--json", "--show-context", str(build), "When?")
    assert result.exit_code == 0, result.output
    assert f"<|im_start|>system\nYou help the town hall.\n\n{EXPERT_LAW}\n{BRIEF}<|im_end|>" in fake_engine.prompts[0]
    sections = json.loads(result.output)["context"]["sections"]
    assert [s["name"] for s in sections] == ["system", "styles", "pinned", "few-shot", "recalled", "knowledge",
                                             "history", "message", "template"]
    tok = fake_engine.tokenizer.count
    assert sections[1] == {"name": "styles", "tokens": tok(EXPERT_LAW) + tok(BRIEF), "kept": 2, "dropped": 0}


def test_a_user_style_on_the_command_line_and_in_the_context_table(run, fake_engine, pml_home):
    pml_home.mkdir(parents=True, exist_ok=True)
    (pml_home / "styles.yml").write_text("pirate: 'Talk like a pirate to {who}.'\n")
    result = run("ask", "--style", "pirate:who=Anne", "--style", "brief", "--show-context", "When?")
    assert result.exit_code == 0, result.output
    assert f"<|im_start|>system\n{BRIEF}\nTalk like a pirate to Anne.<|im_end|>" in fake_engine.prompts[0]
    assert any(line.split()[:2] == ["styles", "2"] for line in result.output.splitlines()), result.output


def test_unknown_styles_and_missing_parameters_are_one_line(stored_tiny, pml_home, tmp_path):
    assert_one_line_error(pml("ask", "--style", "fancy", "tiny", "hello", home=pml_home),
                          "unknown style 'fancy' (known: brief, eli5, expert, step_by_step)")
    assert_one_line_error(pml("ask", "--style", "expert", "tiny", "hello", home=pml_home),
                          "style 'expert' needs field")
    path = tmp_path / "b.yml"
    path.write_text("from: tiny\nstyles: [brief, expert]\n")
    assert_one_line_error(pml("create", "b", "-f", str(path), home=pml_home), "style 'expert' needs field")
    assert not (pml_home / "builds" / "b.yml").exists()


def test_the_help_names_every_built_in_style(run):
    from pimpmyllama.prompting.styles import BUILTIN

    for command in ("ask", "chat"):
        shown = " ".join(run(command, "--help").output.split())
        assert all(name in shown for name in BUILTIN), shown
