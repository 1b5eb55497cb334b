"""Styles: their exact instructions, their fixed order, the user's own, and the
one-line errors for an unknown style or a missing parameter."""

import pytest

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.prompting.build import parse_build
from pimpmyllama.prompting.format import ChatFormat
from pimpmyllama.prompting.packer import compose_system, pack_context
from pimpmyllama.prompting.styles import BUILTIN, load_user_styles, parse_style_option, resolve_styles
from pimpmyllama.prompting.tokenizer import Tokenizer

EXPERT_LAW = "Answer as an expert in law would, precisely and in the terms of the field."
ELI5 = "Explain simply, as you would to a five-year-old."
STEPS = "Think step by step: give the steps first, then the answer."
BRIEF = "Answer briefly, in one or two sentences."


def instructions(specs, user=None):
    return [s.instruction for s in resolve_styles(specs, {} if user is None else user)]


def test_each_built_in_style_and_their_fixed_order():
    assert list(BUILTIN) == ["expert", "eli5", "step_by_step", "brief"]
    assert instructions(["brief"]) == [BRIEF]
    everything = [EXPERT_LAW, ELI5, STEPS, BRIEF]
    assert instructions(["brief", "step_by_step", "eli5", {"expert": {"field": "law"}}]) == everything
    assert instructions([{"expert": {"field": "law"}}, "eli5", "step_by_step", "brief"]) == everything
    assert instructions(["brief", {"expert": {"field": "law"}}]) == [EXPERT_LAW, BRIEF]


def test_the_system_message_holds_the_prompt_then_the_styles_then_the_facts():
    styles = instructions(["brief", {"expert": {"field": "law"}}])
    assert compose_system("You help the town hall.", styles, ["The post office opens at 9am."], ()) == (
        "You help the town hall.\n\n"
        f"{EXPERT_LAW}\n{BRIEF}\n\n"
        "Facts to keep in mind:\n- The post office opens at 9am."
    )
    assert compose_system(None, [BRIEF], (), ()) == BRIEF
    assert compose_system(None, [], (), ()) is None


def test_the_context_shows_the_styles_as_their_own_section(tiny_model):
    fmt = ChatFormat(Tokenizer(tiny_model))
    styles = instructions(["brief", "eli5"])
    packed = pack_context(fmt, message="When?", num_ctx=512, max_new_tokens=64, system="Be kind.", styles=styles)
    assert [s.name for s in packed.sections] == ["system", "styles", "pinned", "few-shot", "recalled", "knowledge",
                                                 "history", "message", "template"]
    section = packed.sections[1]
    assert section.kept == 2 and section.tokens == fmt.tokenizer.count(ELI5) + fmt.tokenizer.count(BRIEF)
    assert packed.messages[0]["content"] == f"Be kind.\n\n{ELI5}\n{BRIEF}"
    assert sum(s.tokens for s in packed.sections) == packed.total_tokens


def test_user_styles_come_after_the_built_in_ones_in_file_order(pml_home):
    pml_home.mkdir(parents=True)
    (pml_home / "styles.yml").write_text("pirate: Talk like a pirate.\nformal: 'Address the reader as {title}.'\n")
    assert load_user_styles() == {"pirate": "Talk like a pirate.", "formal": "Address the reader as {title}."}
    got = [s.instruction for s in resolve_styles([{"formal": {"title": "Madam"}}, "brief", "pirate"])]
    assert got == [BRIEF, "Talk like a pirate.", "Address the reader as Madam."]


@pytest.mark.parametrize("text, message", [
    ("brief: Be short.\n", "'brief' is a built-in style; give yours another name"),
    ("odd: 'Use {0}.'\n", "style 'odd': {0} is not a field name"),
    ("odd: 'Use {field.'\n", "style 'odd': expected '}' before end of string"),
    ("odd: [a, b]\n", "style 'odd' must be an instruction (a non-empty string)"),
    ("- a list\n", "styles are a mapping of name: instruction"),
])
def test_a_bad_styles_file_is_one_line(pml_home, text, message):
    pml_home.mkdir(parents=True)
    (pml_home / "styles.yml").write_text(text)
    with pytest.raises(InvalidInputError) as err:
        resolve_styles(["brief"])
    assert message in str(err.value) and "styles.yml" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("specs, message", [
    (["fancy"], "unknown style 'fancy' (known: brief, eli5, expert, step_by_step)"),
    (["expert"], "style 'expert' needs field: write {expert: {field: ...}} in a build, or --style expert:field=..."),
    ([{"brief": {"words": "10"}}], "style 'brief' has no parameter 'words' (it takes: none)"),
    ([{"expert": {"feld": "law"}}], "style 'expert' needs field"),
    (["brief", "brief"], "style 'brief' is given twice"),
])
def test_style_errors_are_one_line(specs, message):
    with pytest.raises(InvalidInputError) as err:
        resolve_styles(specs, {})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_styles_in_a_build_and_on_the_command_line():
    build = parse_build("styles: [brief, {expert: {field: law}}]")
    assert build.styles == ["brief", {"expert": {"field": "law"}}]
    assert parse_build(build.to_yaml()).styles == build.styles
    assert parse_build("styles: [{expert: {field: 42}}]").styles == [{"expert": {"field": "42"}}]
    with pytest.raises(InvalidInputError, match="a style is a name, or {name: {parameter: value}}"):
        parse_build("styles: [{brief: x, eli5: y}]")
    assert parse_style_option("brief") == "brief"
    assert parse_style_option("expert:field=family law") == {"expert": {"field": "family law"}}
    with pytest.raises(InvalidInputError, match="write NAME or NAME:KEY=VALUE"):
        parse_style_option("expert:law")
