"""The numbers of a comparison: Wilson intervals, flips between two variants, and
each lever's contribution by ablation. Pure functions over result rows."""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

Z95 = 1.959963984540054  # the two-sided 95 % quantile of the normal distribution


def wilson(passed: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of passed/n (None when n is 0: no NaN, no guess).
    Unlike p ± z·sqrt(p(1-p)/n) it stays within [0, 1] and is not empty at 0/n or n/n."""
    if n == 0:
        return None
    p = passed / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, center - half), min(1.0, center + half)


def question_outcomes(rows: Iterable) -> dict[str, bool]:
    """question id -> passed, for the checked questions of one variant's rows; with
    repeats, a question passes when most of its repeats do (a tie fails)."""
    tally: dict[str, list[int]] = {}
    for row in rows:
        if row.passed is not None:
            counts = tally.setdefault(row.question_id, [0, 0])
            counts[0] += int(row.passed)
            counts[1] += 1
    return {qid: 2 * ok > n for qid, (ok, n) in tally.items()}


@dataclass
class Flips:
    """How the checked questions answered by both variants moved from `a` to `b`."""

    a: str
    b: str
    wrong_to_right: list[str] = field(default_factory=list)  # question texts
    right_to_wrong: list[str] = field(default_factory=list)
    both_right: int = 0
    both_wrong: int = 0


def flips(a: str, b: str, rows_a: Iterable, rows_b: Iterable, texts: dict[str, str]) -> Flips:
    """`texts`: question id -> text, in the order questions are listed."""
    out_a, out_b = question_outcomes(rows_a), question_outcomes(rows_b)
    result = Flips(a, b)
    for qid, text in texts.items():
        if qid not in out_a or qid not in out_b:
            continue
        before, after = out_a[qid], out_b[qid]
        if before and after:
            result.both_right += 1
        elif not before and not after:
            result.both_wrong += 1
        elif after:
            result.wrong_to_right.append(text)
        else:
            result.right_to_wrong.append(text)
    return result


@dataclass
class AblationRow:
    lever: str
    variant: str  # the variant without this lever
    pass_rate: float | None
    contribution: float | None  # whole's pass rate minus this one's: what the lever adds


@dataclass
class Ablation:
    variant: str
    pass_rate: float | None
    rows: list[AblationRow]


def ablation(whole: str, pass_rates: dict[str, float | None], minus: Sequence[tuple[str, str]]) -> Ablation:
    """`minus`: (lever, variant without it) pairs; `pass_rates`: variant -> pass rate."""
    top = pass_rates.get(whole)
    rows = []
    for lever, variant in minus:
        rate = pass_rates.get(variant)
        contribution = top - rate if top is not None and rate is not None else None
        rows.append(AblationRow(lever, variant, rate, contribution))
    return Ablation(whole, top, rows)
