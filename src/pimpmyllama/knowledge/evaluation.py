"""`pml kb eval`: how often retrieval finds what a question needs (recall@k, MRR)."""

import json
from dataclasses import dataclass
from pathlib import Path

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.knowledge.retrieval import Hit, retrieve
from pimpmyllama.knowledge.store import KnowledgeBase, KnowledgeStore, source_matches


@dataclass(frozen=True)
class Question:
    question: str
    source: str | None = None  # a source path, file name or glob the answer lives in
    answer: str | None = None  # a substring the retrieved text must contain


@dataclass
class EvalReport:
    questions: int
    k: int
    recall: float  # share of questions with a relevant passage in the top k
    mrr: float  # mean of 1/rank of the first relevant passage (0 when none in the top k)
    misses: list[str]


def read_questions(path: Path) -> list[Question]:
    questions = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot be read ({exc.strerror})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise InvalidInputError(f"{path}:{number}: not valid JSON") from None
        if not isinstance(record, dict) or not isinstance(record.get("question"), str):
            raise InvalidInputError(f"{path}:{number}: needs a 'question' string")
        if not (record.get("source") or record.get("answer")):
            raise InvalidInputError(f"{path}:{number}: needs an expected 'source' or 'answer'")
        questions.append(Question(record["question"], record.get("source"), record.get("answer")))
    if not questions:
        raise InvalidInputError(f"{path}: no questions")
    return questions


def relevant(hit: Hit, q: Question) -> bool:
    if q.source and not (hit.chunk.source == q.source or source_matches(hit.chunk.source, q.source)):
        return False
    if q.answer and q.answer.lower() not in hit.chunk.text.lower():
        return False
    return True


def evaluate(store: KnowledgeStore, kb: KnowledgeBase, embedder, questions: list[Question], k: int = 4,
             mode: str = "hybrid") -> EvalReport:
    found, reciprocal, misses = 0, 0.0, []
    for q in questions:
        hits = retrieve(store, kb, embedder, q.question, k, mode=mode)
        rank = next((i for i, hit in enumerate(hits, start=1) if relevant(hit, q)), None)
        if rank is None:
            misses.append(q.question)
        else:
            found += 1
            reciprocal += 1.0 / rank
    n = len(questions)
    return EvalReport(n, k, found / n, reciprocal / n, misses)
