"""The judge: yes or no from the probabilities of the two answers, every spelling
scored token by token; its agreement with the rule checks; its place in a run."""

import math

import pytest
import torch
from compare_data import QUESTIONS, SPEC

from pimpmyllama.evaluation.judge import (
    NO,
    YES,
    Judge,
    agreement,
    answer_sequences,
    judge_messages,
    p_yes,
    ranking_auc,
)


def test_p_yes_is_the_share_of_yes_between_the_two_answers():
    assert p_yes(math.log(0.3), math.log(0.1)) == pytest.approx(0.75)
    assert p_yes(-1000.0, -1001.0) == pytest.approx(1 / (1 + math.exp(-1)))  # no underflow


def test_agreement_counts_and_cohens_kappa():
    checks = [True] * 5 + [False] * 5
    judge = [True, True, True, True, False, False, False, False, False, True]
    a = agreement(list(zip(checks, judge)))
    assert (a["n"], a["agree"], a["rate"]) == (10, 8, 0.8)
    assert a["kappa"] == pytest.approx((0.8 - 0.5) / (1 - 0.5))
    assert agreement([]) is None
    assert agreement([(True, True)] * 3)["kappa"] is None  # chance agreement is total: kappa says nothing


def test_the_ranking_auc_counts_pairs_ranked_right_and_ties_as_half():
    pairs = [(True, 0.9), (True, 0.4), (False, 0.4), (False, 0.1)]
    assert ranking_auc(pairs) == pytest.approx((2 + 1.5) / 4)  # 0.9 beats both; 0.4 beats 0.1, ties 0.4
    assert ranking_auc([(True, 0.2)]) is None


def test_the_judge_scores_every_spelling_token_by_token(fake_engine):
    # Every token equally likely: a spelling of n tokens has probability V^-n, so
    # P(yes) is the yes spellings' share of the total, whatever their lengths.
    vocab = fake_engine.tokenizer.vocab_size
    fake_engine.logprobs = lambda text: torch.full((vocab,), -math.log(vocab))
    judge = Judge(fake_engine, fake_engine.chat_format(), num_ctx=512)
    yes, no = answer_sequences(fake_engine.tokenizer, YES), answer_sequences(fake_engine.tokenizer, NO)
    assert max(map(len, yes)) > 1  # the tiny tokenizer has no single token for "yes"
    mass = lambda seqs: sum(vocab ** -len(s) for s in seqs)
    assert judge("When?", ["9am"], "At 9am.") == pytest.approx(mass(yes) / (mass(yes) + mass(no)))
    prompt = fake_engine.tokenizer.decode(fake_engine.scored[0], skip_special_tokens=False)
    assert "Question: When?\nCorrect answer: 9am\nAnswer to grade: At 9am." in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    # One call per distinct prefix: the prompt alone, then each prefix of a spelling.
    prefixes = {s[:i] for s in yes + no for i in range(len(s))}
    assert len(fake_engine.scored) == len(prefixes)


def test_without_expected_answers_the_judge_is_asked_whether_the_reply_answers():
    user = judge_messages("Say hi.", [], "  ")[1]["content"]
    assert user == ("Question: Say hi.\nAnswer to grade: (nothing)\n\n"
                    "Does the answer to grade answer the question correctly?")


def test_a_long_reply_is_cut_in_the_middle_to_fit_the_judges_window(fake_engine):
    judge = Judge(fake_engine, fake_engine.chat_format(), num_ctx=64)
    ids = judge.prompt_ids("When?", ["9am"], "blah " * 200)
    longest = max(map(len, judge.yes + judge.no))
    assert len(ids) == 64 - longest
    full = fake_engine.chat_format().encode(judge_messages("When?", ["9am"], "blah " * 200))
    assert ids[:10] == full[:10] and ids[-10:] == full[-10:]


def _judge_says_yes_to(tokenizer, *replies):
    def logprobs(text):
        lp = torch.full((tokenizer.vocab_size,), -30.0)
        favoured = YES if any(f"Answer to grade: {r}" in text for r in replies) else NO
        for spelling in favoured:
            lp[tokenizer.encode(spelling)] = -0.1
        return lp
    return logprobs


def test_a_run_with_a_judge_grades_every_reply_once(fake_engine, write_spec, tmp_path):
    from pimpmyllama.evaluation.runner import run_comparison

    fake_engine.replies.extend(["It opens at 9 H.", "No idea.", "Hello.", "At 10am.", "Yes, a CAP is required.",
                                "Hi."])
    fake_engine.logprobs = _judge_says_yes_to(fake_engine.tokenizer, "It opens", "At 10am", "Yes, a CAP")
    spec = write_spec(SPEC + "judge: base\n", QUESTIONS)
    results = run_comparison(spec, tmp_path / "out")
    assert [(r.passed, r.judge > 0.5) for r in results.rows] == [
        (True, True), (False, False), (None, False), (False, True), (True, True), (None, False)]
    base, prompted = results.variants
    assert (base.judged, base.judge_rate, prompted.judged, prompted.judge_rate) == (3, 1 / 3, 3, 2 / 3)
    a = results.judge_agreement  # checked rows: (T,T) (F,F) (F,T) (T,T)
    assert (a["n"], a["agree"], a["kappa"]) == (4, 3, pytest.approx(0.5))
    assert a["auc"] == pytest.approx(0.75)  # the checks' passes at P(yes) high, high; failures at high, low
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Judge: base" in report and "agrees with the rule checks on 3 of 4 replies (75.0%)" in report
    assert "| prompted | 3 | 66.7% | 50.0% |" in report
    scored = len(fake_engine.scored)
    again = run_comparison(spec, tmp_path / "out")  # verdicts come from judge.jsonl
    assert len(fake_engine.scored) == scored and [r.judge for r in again.rows] == [r.judge for r in results.rows]
    assert len((tmp_path / "out" / "judge.jsonl").read_text().splitlines()) == 6
