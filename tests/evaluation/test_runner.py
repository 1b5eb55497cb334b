"""Running a comparison with a fake engine (the model is not the point here): the
rows, the verdicts, the context spent, the cache and what a re-run asks again."""

import json

import pytest

from compare_data import QUESTIONS, SPEC


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_run_answers_every_variant_and_question(fake_engine, write_spec, tmp_path):
    from pimpmyllama.evaluation.runner import run_comparison

    fake_engine.replies.extend(["It opens at 9 H.", "No idea.", "Hello.",
                                "At 10am.", "Yes, a CAP is required.", "Hi."])
    spec = write_spec(SPEC, QUESTIONS)
    results = run_comparison(spec, tmp_path / "out")
    assert results.complete and results.questions == 3 and results.expected_answers == 6
    base, prompted = results.variants
    assert (base.name, base.levers, base.engine) == ("base", [], "tiny")
    assert (prompted.levers, prompted.label) == (["prompt"], "prompted [prompt]")
    assert [(r.variant, r.reply, r.passed) for r in results.rows] == [
        ("base", "It opens at 9 H.", True), ("base", "No idea.", False), ("base", "Hello.", None),
        ("prompted", "At 10am.", False), ("prompted", "Yes, a CAP is required.", True), ("prompted", "Hi.", None),
    ]
    assert [v["detail"] for v in results.rows[4].verdicts] == ["contains 'cap'", "ended by itself after 5 tokens"]
    assert (base.passed, base.checked, base.pass_rate) == (1, 2, 0.5)
    assert base.stop_rate == 1.0 and base.mean_reply_tokens == pytest.approx((5 + 2 + 1) / 3)
    # The context spent, from the packer: the system prompt only in the prompted variant.
    assert results.rows[0].context["system"] == 0 and results.rows[3].context["system"] > 0
    assert prompted.context["system"] == results.rows[3].context["system"]
    assert "Answer like the town hall." in fake_engine.prompts[3] and "town hall" not in fake_engine.prompts[0]
    flips = results.flips[0]
    assert (flips.a, flips.b, flips.wrong_to_right, flips.right_to_wrong) == (
        "base", "prompted", ["Is a cap required at the pool?"], ["When does the post office open?"])
    lines = _lines(tmp_path / "out" / "results.jsonl")
    assert [(x["variant"], x["question"], x["passed"], x["stopped"]) for x in lines] == [
        (r.variant, r.question, r.passed, True) for r in results.rows]
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {"report.html", "report.md", "results.jsonl", "charts"}


def test_a_rerun_asks_only_what_is_new_and_rechecks_from_the_cache(fake_engine, write_spec, tmp_path):
    from pimpmyllama.evaluation.runner import run_comparison

    spec = write_spec(SPEC, QUESTIONS)
    out = tmp_path / "out"
    fake_engine.replies.extend(["9am"] * 6)
    first = run_comparison(spec, out)
    assert len(fake_engine.prompts) == 6
    second = run_comparison(spec, out)
    assert len(fake_engine.prompts) == 6  # nothing asked again
    assert [r.to_dict() for r in second.rows] == [r.to_dict() for r in first.rows]
    # A new question and a new variant: only they are asked; a changed `expected` re-checks.
    questions = [{**QUESTIONS[0], "expected": "10am"}, *QUESTIONS[1:], {"question": "New?", "expected": "yes"}]
    write_spec(SPEC + "  third: {extends: base, pinned: [The pool needs a cap.]}\n", questions)
    fake_engine.replies.extend(["yes"] * 10)
    third = run_comparison(spec, out)
    assert len(fake_engine.prompts) == 6 + 2 + 4
    assert third.rows[0].passed is False and third.rows[0].verdicts[0]["detail"] == "none of '10am' in the reply"
    assert len(_lines(out / "results.jsonl")) == 12


def test_sampled_variants_answer_once_per_seed(fake_engine, write_spec, tmp_path):
    from pimpmyllama.evaluation.runner import run_comparison

    spec = write_spec("questions: questions.jsonl\nperplexity: false\nrepeats: 3\nseed: 10\nvariants:\n"
                      "  greedy: {model: tiny}\n  sampled: {model: tiny, parameters: {temperature: 0.7}}\n",
                      QUESTIONS[:1])
    results = run_comparison(spec, tmp_path / "out")
    assert [(r.variant, r.seed) for r in results.rows] == [("greedy", 10), ("sampled", 10), ("sampled", 11),
                                                          ("sampled", 12)]
    assert results.variants[1].checked == 3
