"""Every check on crafted replies, and bad checks refused when the questions are read."""

import pytest

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.evaluation.checks import CHECKS, Answer, compile_check, run_checks


def verdicts(spec, reply: str, expected=(), finish: str = "stop", tokens: int = 5):
    compiled = compile_check(spec, list(expected), "q.jsonl:1")
    return [(v.passed, v.detail) for v in run_checks([compiled], Answer(reply, finish, tokens), tuple(expected))]


def test_contains_and_exact_fold_case_accents_and_spaces():
    assert verdicts("contains", "Elle ouvre à 9H  du MATIN.", ["9h du matin"]) == [(True, "contains '9h du matin'")]
    assert verdicts("contains", "Le CAFÉ ouvre", ["cafe"]) == [(True, "contains 'cafe'")]
    assert verdicts("contains", "opens at 10", ["9am", "9 h"]) == [(False, "none of '9am', '9 h' in the reply")]
    assert verdicts("exact", "  Crème\tBrûlée ", ["creme brulee"]) == [(True, "is 'creme brulee'")]
    assert verdicts("exact", "creme brulee, please", ["creme brulee"]) == [(False, "is not 'creme brulee'")]
    assert verdicts({"type": "contains", "expected": "pool"}, "the POOL", ["ignored"]) == [(True, "contains 'pool'")]


def test_regex_folds_the_reply_not_the_escapes():
    assert verdicts({"type": "regex", "pattern": "9 ?(h|am)"}, "Ouvert à 9 H") == [(True, "'9 ?(h|am)' matched '9 h'")]
    assert verdicts({"type": "regex", "pattern": "9 ?(h|am)"}, "at 9AM sharp")[0][0] is True
    assert verdicts({"type": "regex", "pattern": r"^\S+$"}, "Élan") == [(True, "'^\\\\S+$' matched 'elan'")]
    assert verdicts({"type": "regex", "pattern": "piscine"}, "the pool") == [(False, "no match for 'piscine'")]
    assert verdicts("regex", "code 42", [r"\d+"])[0][0] is True  # the expected strings as patterns


def test_json_and_json_schema():
    schema = {"type": "object", "required": ["hours"], "properties": {"hours": {"type": "string"}}}
    assert verdicts("json", '```json\n{"hours": "9am"}\n```') == [(True, "parses as a JSON dict")]
    assert verdicts("json", "hours: 9am")[0] == (False, "not JSON (Expecting value at line 1 column 1)")
    assert verdicts({"type": "json_schema", "schema": schema}, '{"hours": "9am"}') == [(True, "valid against the schema")]
    assert verdicts({"type": "json_schema", "schema": schema}, '{"hours": 9}') == [
        (False, "hours: 9 is not of type 'string'")]
    assert verdicts({"type": "json_schema", "schema": schema}, "{}") == [
        (False, "(top level): 'hours' is a required property")]


def test_stops_within_n_tokens():
    assert verdicts("stops", "short", tokens=3) == [(True, "ended by itself after 3 tokens")]
    assert verdicts({"type": "stops", "max_tokens": 2}, "short", tokens=3) == [
        (False, "ended after 3 tokens, more than 2")]
    assert verdicts("stops", "cut", finish="length", tokens=64) == [(False, "did not end by itself (length after 64 tokens)")]


def test_semantic_is_the_best_cosine_against_the_threshold(monkeypatch):
    """The embedder is a fake with fixed unit vectors (the real one takes ~15 s to load
    here and is tested with the knowledge bases): the cosine and threshold are exact."""
    import numpy as np

    import pimpmyllama.evaluation.checks as checks

    vectors = {"opens at 9am": [1.0, 0.0], "9 in the morning": [0.8, 0.6], "closed": [0.0, 1.0],
               "caps required": [0.6, -0.8]}

    class Fake:
        def encode(self, texts):
            return np.array([vectors[t] for t in texts], dtype=np.float32)

    monkeypatch.setattr(checks, "load_embedder", lambda name=None: Fake())
    assert verdicts("semantic", "opens at 9am", ["closed", "9 in the morning"]) == [
        (True, "cosine 0.800 >= 0.7 with '9 in the morning'")]
    assert verdicts({"type": "semantic", "threshold": 0.9}, "opens at 9am", ["9 in the morning"]) == [
        (False, "cosine 0.800 < 0.9 with '9 in the morning'")]
    assert verdicts("semantic", "caps required", ["opens at 9am"]) == [
        (False, "cosine 0.600 < 0.7 with 'opens at 9am'")]


@pytest.mark.parametrize("spec, expected, message", [
    ("contain", ["x"], "q.jsonl:1: unknown check 'contain' (known: contains, exact, regex, json, json_schema, "
                       "semantic, stops)"),
    ({"type": "regex", "pattern": "9 (h|am"}, [], "q.jsonl:1: invalid regex '9 (h|am' (missing ), unterminated"),
    ({"type": "json_schema", "schema": {"type": "nope"}}, [], "q.jsonl:1: invalid JSON schema ("),
    ({"type": "stops", "max_token": 3}, [], "q.jsonl:1: check stops: unknown key 'max_token'"),
    ("contains", [], "q.jsonl:1: check contains needs 'expected'"),
    ({"pattern": "x"}, [], "q.jsonl:1: a check mapping needs a 'type'"),
])
def test_bad_checks_are_one_line_errors(spec, expected, message):
    with pytest.raises(InvalidInputError) as info:
        compile_check(spec, expected, "q.jsonl:1")
    assert str(info.value).startswith(message), str(info.value)


def test_the_registry_is_what_the_docs_list():
    import pimpmyllama.evaluation.checks as checks

    assert list(CHECKS) == ["contains", "exact", "regex", "json", "json_schema", "semantic", "stops"]
    assert all(f"    {name} " in checks.__doc__ for name in CHECKS)
