"""Question files: JSONL, one question per line.

    {"question": "When does the post office open?", "expected": ["9am", "9 h"],
     "check": [{"type": "regex", "pattern": "9 ?(h|am)"}, "stops"], "tags": ["hours"]}

`expected` is a string or a list of acceptable strings; `check` a check, or a list
of them (default: `contains` over `expected` when it is given, no check otherwise).
Every problem is one line naming the file and the line.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pimpmyllama.config_files import describe_validation_error
from pimpmyllama.errors import InvalidInputError
from pimpmyllama.evaluation.checks import CheckSpec, compile_check
from pimpmyllama.text import check_texts
from pimpmyllama.training.records import read_records


class QuestionLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, description="what is asked, as the user message")
    expected: list[str] = Field(default_factory=list, description="acceptable answers (a string or a list)")
    check: list[str | dict] | None = Field(None, description="checks (default: contains over expected)")
    tags: list[str] = Field(default_factory=list)

    @field_validator("expected", "check", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [value] if isinstance(value, (str, dict)) else value


@dataclass(frozen=True)
class Question:
    id: str  # stable across runs and files: a hash of the question's text
    text: str
    expected: tuple[str, ...]
    checks: tuple[CheckSpec, ...]
    tags: tuple[str, ...]
    where: str  # file:line, for messages


def question_id(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def read_questions(paths: list[Path]) -> list[Question]:
    """Every question of the files (JSONL, or any record file `pml train` reads), in
    order; the same question twice is an error (its answers would share one cache entry)."""

    questions: list[Question] = []
    seen: dict[str, str] = {}
    for path in paths:
        for record in read_records(path):
            question = _parse(record.data, record.origin)
            if question.id in seen:
                raise InvalidInputError(f"{question.where}: the same question as {seen[question.id]}")
            seen[question.id] = question.where
            questions.append(question)
    if not questions:
        raise InvalidInputError(f"no questions in {', '.join(map(str, paths))}")
    return questions


def _parse(data: dict, where: str) -> Question:
    check_texts(data, where)
    try:
        parsed = QuestionLine.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError(describe_validation_error(where, exc)) from None
    if parsed.check is None:
        specs = [CheckSpec("contains", {})] if parsed.expected else []
    else:
        specs = [compile_check(spec, parsed.expected, where) for spec in parsed.check]
    return Question(question_id(parsed.question), parsed.question, tuple(parsed.expected), tuple(specs),
                    tuple(parsed.tags), where)
