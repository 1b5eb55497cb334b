"""Bad specs and question files: exit 2, one line naming the key, variant or file
line, and nothing written in the output folder."""

import pytest
from typer.testing import CliRunner

from compare_data import QUESTIONS

GOOD = "questions: questions.jsonl\nperplexity: false\nvariants:\n  base: {model: tiny}\n"


@pytest.fixture
def compare(stored_tiny, tmp_path):
    from pimpmyllama.cli.main import app

    def run(spec):
        out = tmp_path / "out"
        result = CliRunner().invoke(app, ["compare", str(spec), "-o", str(out)])
        assert not out.exists(), "nothing may be written on bad input"
        return result

    return run


def assert_one_line(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("variants, fragments", [
    ("  rag: {model: tiny, knowlege: [town]}\n", ["unknown key 'variants.rag.knowlege'"]),
    ("  b: {extends: nope}\n", ["variant 'b' extends unknown variant 'nope' (known: base, b)"]),
    ("  a: {extends: b}\n  b: {extends: a}\n", ["variants extend each other in a cycle: a -> b -> a"]),
    ("  x: {build: ghost}\n", ["variant 'x': unknown build or model 'ghost'"]),
    ("  x: {model: tiny+nope}\n", ["variant 'x': unknown adapter 'nope'"]),
    ("  x: {build: missing.yml}\n", ["variant 'x': ", "missing.yml does not exist"]),
    ("  x: {model: tiny, parameters: {temprature: 1}}\n", ["variant 'x'", "unknown key 'parameters.temprature'"]),
    ("  x: {model: tiny, styles: [no-such-style]}\n", ["variant 'x'", "style"]),
    ("  rag: {model: tiny, knowledge: [town]}\n", ["variant 'rag': unknown knowledge base 'town'"]),
])
def test_bad_variants(compare, write_spec, variants, fragments):
    assert_one_line(compare(write_spec(GOOD + variants, QUESTIONS)), *fragments)


@pytest.mark.parametrize("extra, fragments", [
    ("pairs: [[base, nope]]\n", ["pairs: unknown variant 'nope' (known: base)"]),
    ("ablate: nope\n", ["ablate: unknown variant 'nope'"]),
    ("judge: nope\n", ["judge: unknown variant 'nope' (known: base)"]),
    ("repeat: 3\n", ["unknown key 'repeat'"]),
    ("texts: {domain: nowhere.txt}\n", ["texts.domain: ", "nowhere.txt does not exist"]),
])
def test_bad_spec_keys(compare, write_spec, extra, fragments):
    assert_one_line(compare(write_spec(GOOD + extra, QUESTIONS)), *fragments)


def test_not_yaml_and_no_file(compare, write_spec, tmp_path):
    assert_one_line(compare(write_spec("variants: [\n", QUESTIONS)), "not valid YAML")
    assert_one_line(compare(tmp_path / "none.yml"), "none.yml does not exist")


@pytest.mark.parametrize("lines, fragments", [
    (['{"question": "a?", "expected": "x"}', '{"question": "b?", expected: 1}'],
     ["questions.jsonl:2: not valid JSON"]),
    (['{"question": "a?"}', '{"questoin": "b?"}'], ["questions.jsonl:2: ", "unknown key 'questoin'"]),
    (['{"question": "a?", "check": "contain", "expected": "x"}'], ["questions.jsonl:1: unknown check 'contain'"]),
    (['{"question": "a?", "check": {"type": "regex", "pattern": "(9"}}'], ["questions.jsonl:1: invalid regex '(9'"]),
    (['{"question": "a?"}', '{"question": "a?"}'], ["questions.jsonl:2: the same question as ", "questions.jsonl:1"]),
    (['["a?"]'], ["questions.jsonl:1: a record must be a JSON object"]),
])
def test_bad_question_files(compare, write_spec, lines, fragments):
    assert_one_line(compare(write_spec(GOOD, lines)), *fragments)


def test_a_missing_questions_file(compare, write_spec):
    assert_one_line(compare(write_spec(GOOD.replace("questions.jsonl", "nowhere.jsonl"))), "nowhere.jsonl does not exist")
