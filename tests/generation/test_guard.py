"""The precisions' quality guard: its bounds, the decode-path pass that measures a
precision, and the verdict against fp32."""

import math

import pytest
import torch

from pimpmyllama.generation.guard import DecodePass, decode_pass, judge
from pimpmyllama.generation.precision import PRECISIONS, Guard


def test_each_precision_states_its_guard():
    assert PRECISIONS["fp32"].guard is None  # the reference
    assert PRECISIONS["bf16"].guard == PRECISIONS["int8"].guard == Guard(0.98, 0.01)
    assert PRECISIONS["int4"].guard == Guard(0.95, 0.05)


@pytest.mark.parametrize("agreement, rise, passed", [
    (0.98, 0.01, True), (1.0, -0.02, True), (0.9799, 0.0, False), (1.0, 0.0101, False),
])
def test_a_guard_passes_at_its_bounds_and_not_beyond(agreement, rise, passed):
    assert Guard(min_agreement=0.98, max_perplexity_rise=0.01).passes(agreement, rise) is passed


def a_pass(top1: list[int], perplexity: float) -> DecodePass:
    return DecodePass(top1, [1.0] * len(top1), nll=len(top1) * math.log(perplexity), seconds=1.0)


def test_the_verdict_counts_agreeing_positions_and_the_perplexity_rise():
    reference = a_pass(list(range(25)), 10.0)
    measured = a_pass(list(range(24)) + [99], 10.4)  # 24 of 25 positions agree, +4 %
    at_int4 = judge("int4", measured, reference)
    assert at_int4.agreement == 0.96 and at_int4.perplexity_rise == pytest.approx(0.04)
    assert at_int4.passed is True
    assert judge("int8", measured, reference).passed is False
    assert judge("fp32", reference, reference) == judge("fp32", reference, reference)
    itself = judge("fp32", reference, reference)
    assert (itself.agreement, itself.perplexity_rise, itself.passed) == (1.0, 0.0, None)
    with pytest.raises(ValueError, match="different texts"):
        judge("int8", a_pass([1, 2], 10.0), reference)


def test_the_guard_counts_every_position_and_reports_the_clear_ones_beside():
    reference = DecodePass(list(range(10)), [0.1, 0.49] + [0.5] * 8, nll=10 * math.log(10.0), seconds=1.0)
    measured = a_pass([99, 98] + list(range(2, 9)) + [97], 10.0)  # both near-ties and one clear position differ
    verdict = judge("int8", measured, reference)
    assert verdict.agreement == 7 / 10 and verdict.clear == 8 and verdict.clear_agreement == 7 / 8
    assert verdict.passed is False
    near_ties_only = judge("int4", a_pass([99] + list(range(1, 10)), 10.0), reference)  # 9 of 10, all clear ones
    assert near_ties_only.agreement == 0.9 and near_ties_only.clear_agreement == 1.0
    assert near_ties_only.passed is False  # 90 % < 95 %: a near-tie counts as any other position


def test_a_decode_pass_records_each_positions_top_token_and_the_texts_likelihood(tiny_model):
    """Against the same windows run as whole prompts: the top token after each position
    and the summed negative log-likelihood of the next ones."""
    from pimpmyllama.generation.loading import load_backend

    model = load_backend(tiny_model, "fp32")
    ids = [int(i) for i in torch.randint(3, 200, (12,), generator=torch.Generator().manual_seed(0))]
    run = decode_pass(model, ids, window=5)  # windows of 5 + 1 tokens: positions 0-4, 5-9, 10
    top1, margins, nll = [], [], 0.0
    for start in (0, 5, 10):
        chunk = ids[start : start + 6]
        logits = model.forward(chunk[:-1], model.new_cache(6), 0, all_logits=True).reshape(len(chunk) - 1, -1)
        top1 += logits.argmax(-1).tolist()
        best = logits.topk(2, dim=-1).values
        margins += (best[:, 0] - best[:, 1]).tolist()
        nll -= float(torch.log_softmax(logits, -1).gather(1, torch.tensor(chunk[1:])[:, None]).sum())
    assert len(run.top1) == 11 and run.top1 == top1
    assert run.margins == pytest.approx(margins, abs=1e-4) and min(run.margins) >= 0
    assert run.nll == pytest.approx(nll, rel=1e-5)
    assert run.perplexity == pytest.approx(math.exp(nll / 11), rel=1e-5)
    assert run.seconds > 0
