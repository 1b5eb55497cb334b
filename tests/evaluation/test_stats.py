"""Wilson intervals against published values; flips and ablation on a fixed results file."""

import json
from pathlib import Path

import pytest

from pimpmyllama.evaluation.results import Row
from pimpmyllama.evaluation.stats import ablation, flips, question_outcomes, wilson

FIXED = Path(__file__).parent / "data" / "fixed-results.jsonl"


@pytest.mark.parametrize("passed, n, low, high", [
    (8, 10, 0.4902, 0.9433),  # Wilson (1927); Newcombe (1998) table I
    (0, 10, 0.0, 0.2775),
    (10, 10, 0.7225, 1.0),
    (1, 2, 0.0945, 0.9055),
    (81, 263, 0.2553, 0.3662),  # Newcombe's 81/263 example: 0.2553-0.3662
])
def test_wilson_intervals(passed, n, low, high):
    got = wilson(passed, n)
    assert got == (pytest.approx(low, abs=5e-5), pytest.approx(high, abs=5e-5))


def test_no_checked_answer_is_no_interval_not_nan():
    assert wilson(0, 0) is None


def rows_by_variant() -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for line in FIXED.read_text().splitlines():
        row = Row.from_dict(json.loads(line))
        out.setdefault(row.variant, []).append(row)
    return out


def test_flips_between_two_variants():
    rows = rows_by_variant()
    texts = {f"q{i}": f"Question {i}?" for i in range(1, 6)}
    f = flips("base", "all", rows["base"], rows["all"], texts)
    assert (f.wrong_to_right, f.right_to_wrong, f.both_right, f.both_wrong) == (
        ["Question 1?", "Question 2?"], [], 1, 1)
    back = flips("all", "all-minus-knowledge", rows["all"], rows["all-minus-knowledge"], texts)
    assert (back.wrong_to_right, back.right_to_wrong) == (["Question 4?"], ["Question 1?", "Question 2?"])


def test_repeats_pass_by_majority():
    rows = [Row("v", "f", "q", "Q", s, "", "stop", 1, 1, 0.0, 0.0, passed=p)
            for s, p in enumerate([True, False, True])]
    assert question_outcomes(rows) == {"q": True}
    assert question_outcomes(rows[:2]) == {"q": False}  # a tie fails


def test_ablation_contribution_of_each_lever():
    rows = rows_by_variant()
    rates = {name: sum(r.passed for r in rs if r.passed is not None) / 4 for name, rs in rows.items()}
    table = ablation("all", rates, [("prompt", "all-minus-prompt"), ("knowledge", "all-minus-knowledge"),
                                    ("fine-tune", "missing")])
    assert table.pass_rate == 0.75
    assert [(r.lever, r.pass_rate, r.contribution) for r in table.rows] == [
        ("prompt", 0.5, 0.25), ("knowledge", 0.5, 0.25), ("fine-tune", None, None)]
