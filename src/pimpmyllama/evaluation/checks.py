"""Checks of a reply, all offline. A registry (plain dict) of named checks; a check
spec in a question file is a name (`"contains"`) or a mapping with `type` and the
check's parameters (`{"type": "regex", "pattern": "9 ?(h|am)"}`).

Every check's parameters are validated when the questions are read, so a bad
check (unknown name, invalid regex, invalid JSON schema) is an error before any
model runs, never a verdict.

    contains     a folded expected string is in the folded reply (any of them)
    exact        the folded reply is a folded expected string
    regex        a pattern (default: each expected string) matches the folded reply
    json         the reply parses as JSON (a ```json fence around it is allowed)
    json_schema  ... and validates against `schema`
    semantic     cosine similarity with an expected string >= `threshold` (0.7),
                 through the bundled embedder
    stops        the model ended the reply itself (not the length limit),
                 within `max_tokens` reply tokens if given

Folding (contains, exact, regex): NFKD with combining marks removed, case folded,
whitespace runs made one space — "Café à 9H" matches "cafe a 9h".
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pimpmyllama.config_files import describe_validation_error
from pimpmyllama.errors import InvalidInputError
from pimpmyllama.evaluation.folding import fold, strip_accents
from pimpmyllama.knowledge.embedders import load_embedder


@dataclass(frozen=True, eq=False)
class CheckSpec:
    type: str
    params: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.params.items() if k != "schema")
        return f"{self.type}({shown})" if shown else self.type


@dataclass(frozen=True)
class Answer:
    """What a check sees of a reply."""

    text: str
    finish_reason: str  # "stop", "length" or "interrupted"
    reply_tokens: int


@dataclass(frozen=True)
class Verdict:
    check: str
    passed: bool
    detail: str


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Expected(_Params):
    expected: str | list[str] | None = Field(None, description="overrides the question's expected strings")


class _Regex(_Params):
    pattern: str | list[str] | None = Field(None, description="patterns (default: the expected strings)")


class _Schema(_Params):
    schema_: dict = Field(alias="schema", description="a JSON schema the reply must validate against")


class _Semantic(_Expected):
    threshold: float = Field(0.7, ge=-1, le=1, description="least cosine similarity that passes")


class _Stops(_Params):
    max_tokens: int | None = Field(None, ge=1, description="the reply must end within this many tokens")


def _strings(params: dict, expected: tuple[str, ...], key: str = "expected") -> list[str]:
    value = params.get(key)
    if value is None:
        return list(expected)
    return [value] if isinstance(value, str) else list(value)


def _quoted(items: list[str]) -> str:
    return ", ".join(repr(i) for i in items)


def check_contains(answer: Answer, expected: tuple[str, ...], params: dict) -> Verdict:
    wanted = _strings(params, expected)
    reply = fold(answer.text)
    found = [w for w in wanted if fold(w) in reply]
    if found:
        return Verdict("contains", True, f"contains {found[0]!r}")
    return Verdict("contains", False, f"none of {_quoted(wanted)} in the reply")


def check_exact(answer: Answer, expected: tuple[str, ...], params: dict) -> Verdict:
    wanted = _strings(params, expected)
    reply = fold(answer.text)
    for w in wanted:
        if fold(w) == reply:
            return Verdict("exact", True, f"is {w!r}")
    return Verdict("exact", False, f"is not {_quoted(wanted)}")


def _fold_pattern(pattern: str) -> str:
    # Accents only: case folding a pattern would turn \S, \W, \D into \s, \w, \d.
    return strip_accents(pattern)


def check_regex(answer: Answer, expected: tuple[str, ...], params: dict) -> Verdict:
    patterns = _strings(params, expected, "pattern")
    reply = fold(answer.text)
    for p in patterns:
        match = re.search(_fold_pattern(p), reply, re.IGNORECASE)
        if match:
            return Verdict("regex", True, f"{p!r} matched {match.group()!r}")
    return Verdict("regex", False, f"no match for {_quoted(patterns)}")


def _json_value(text: str):
    body = text.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", body, re.DOTALL)
    return json.loads(fenced.group(1) if fenced else body)


def check_json(answer: Answer, expected: tuple[str, ...], params: dict) -> Verdict:
    try:
        value = _json_value(answer.text)
    except json.JSONDecodeError as exc:
        return Verdict("json", False, f"not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})")
    return Verdict("json", True, f"parses as a JSON {type(value).__name__}")


def check_json_schema(answer: Answer, expected: tuple[str, ...], params: dict) -> Verdict:
    import jsonschema

    try:
        value = _json_value(answer.text)
    except json.JSONDecodeError as exc:
        return Verdict("json_schema", False, f"not JSON ({exc.msg})")
    error = jsonschema.exceptions.best_match(jsonschema.validators.validator_for(params["schema"])(
        params["schema"]).iter_errors(value))
    if error is not None:
        where = "/".join(map(str, error.absolute_path)) or "(top level)"
        return Verdict("json_schema", False, f"{where}: {error.message}")
    return Verdict("json_schema", True, "valid against the schema")


def check_semantic(answer: Answer, expected: tuple[str, ...], params: dict) -> Verdict:

    wanted = _strings(params, expected)
    threshold = params.get("threshold", 0.7)
    vectors = load_embedder().encode([answer.text, *wanted])
    # The vectors are normalised: a dot product is the cosine similarity.
    scores = [float(vectors[0] @ v) for v in vectors[1:]]
    best = max(range(len(scores)), key=scores.__getitem__)
    passed = scores[best] >= threshold
    relation = ">=" if passed else "<"
    return Verdict("semantic", passed, f"cosine {scores[best]:.3f} {relation} {threshold} with {wanted[best]!r}")


def check_stops(answer: Answer, expected: tuple[str, ...], params: dict) -> Verdict:
    limit = params.get("max_tokens")
    if answer.finish_reason != "stop":
        return Verdict("stops", False, f"did not end by itself ({answer.finish_reason} after "
                                       f"{answer.reply_tokens} tokens)")
    if limit is not None and answer.reply_tokens > limit:
        return Verdict("stops", False, f"ended after {answer.reply_tokens} tokens, more than {limit}")
    return Verdict("stops", True, f"ended by itself after {answer.reply_tokens} tokens")


@dataclass(frozen=True)
class Check:
    run: Callable[[Answer, tuple[str, ...], dict], Verdict]
    params: type[_Params]
    needs_expected: bool = False


CHECKS: dict[str, Check] = {
    "contains": Check(check_contains, _Expected, needs_expected=True),
    "exact": Check(check_exact, _Expected, needs_expected=True),
    "regex": Check(check_regex, _Regex),
    "json": Check(check_json, _Params),
    "json_schema": Check(check_json_schema, _Schema),
    "semantic": Check(check_semantic, _Semantic, needs_expected=True),
    "stops": Check(check_stops, _Stops),
}


def get_check(name: str) -> Check:
    try:
        return CHECKS[name]
    except KeyError:
        raise InvalidInputError(f"unknown check {name!r} (known: {', '.join(CHECKS)})") from None


def compile_check(spec: str | dict, expected: list[str], where: str) -> CheckSpec:
    """A check spec from a question file, validated: its parameters, its patterns, its
    schema. Errors are one line starting with `where`."""
    if isinstance(spec, str):
        name, raw = spec, {}
    else:
        raw = dict(spec)
        name = raw.pop("type", None)
        if not isinstance(name, str):
            raise InvalidInputError(f"{where}: a check mapping needs a 'type' (one of {', '.join(CHECKS)})")
    try:
        check = get_check(name)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc}") from None
    try:
        params = check.params.model_validate(raw).model_dump(by_alias=True, exclude_none=True)
    except ValidationError as exc:
        raise InvalidInputError(describe_validation_error(f"{where}: check {name}", exc)) from None
    for key in ("expected", "pattern"):
        if isinstance(params.get(key), str):
            params[key] = [params[key]]
    if check.needs_expected and not (params.get("expected") or expected):
        raise InvalidInputError(f"{where}: check {name} needs 'expected'")
    if name == "regex":
        patterns = params.get("pattern") or expected
        if not patterns:
            raise InvalidInputError(f"{where}: check regex needs a 'pattern' or 'expected'")
        for p in patterns:
            try:
                re.compile(_fold_pattern(p))
            except re.error as exc:
                raise InvalidInputError(f"{where}: invalid regex {p!r} ({exc})") from None
    if name == "json_schema":
        import jsonschema

        try:
            jsonschema.validators.validator_for(params["schema"]).check_schema(params["schema"])
        except jsonschema.exceptions.SchemaError as exc:
            raise InvalidInputError(f"{where}: invalid JSON schema ({exc.message})") from None
    return CheckSpec(name, params)


def run_checks(specs, answer: Answer, expected: tuple[str, ...]) -> list[Verdict]:
    return [get_check(s.type).run(answer, expected, s.params) for s in specs]
