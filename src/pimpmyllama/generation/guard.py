"""Measuring a precision against fp32 for its quality guard (precision.Guard): one pass
over a real text on the decode path — one token at a time against the KV cache, as
generated tokens are — that records, at every position, the most likely next token and
the log-likelihood of the text's own next token."""

import math
import time
from dataclasses import dataclass

import torch

from pimpmyllama.generation.precision import check_precision

WINDOW = 512  # tokens per fresh cache: every position sees up to this much context
# Where fp32's two most likely next tokens are within this many logits of each other,
# fp32 itself hardly prefers one: any rounding may swap them (bf16 activations alone do,
# at 46 of the default model's 2048 positions of the reference text, every one such a
# near-tie). The guard counts every position; agreement where fp32 has a clear choice
# is reported beside it.
NEAR_TIE = 0.5


@dataclass(frozen=True)
class DecodePass:
    top1: list[int]  # the most likely next token after each position but the last
    margins: list[float]  # its logit minus the second most likely one's
    nll: float  # the text's next tokens' negative log-likelihood, summed
    seconds: float  # spent in the single-token steps

    @property
    def perplexity(self) -> float:
        return math.exp(self.nll / len(self.top1))

    @property
    def tokens_per_second(self) -> float:
        return len(self.top1) / self.seconds


@dataclass(frozen=True)
class Verdict:
    agreement: float  # share of all positions whose most likely next token is fp32's
    clear_agreement: float  # the same over the clear positions
    clear: int  # positions where fp32's top two are NEAR_TIE or more apart
    perplexity_rise: float  # perplexity / fp32's - 1
    passed: bool | None  # None for the reference itself


def decode_pass(model, ids: list[int], window: int = WINDOW) -> DecodePass:
    """`model` (llama.LlamaModel) over `ids`, in windows of `window` + 1 tokens."""
    top1, margins, nll, seconds = [], [], 0.0, 0.0
    for start in range(0, len(ids) - 1, window):
        chunk = ids[start : start + window + 1]
        cache = model.new_cache(len(chunk))
        for position in range(len(chunk) - 1):
            t0 = time.perf_counter()
            logits = model.forward([chunk[position]], cache, position)
            seconds += time.perf_counter() - t0
            best = torch.topk(logits, 2)
            top1.append(int(best.indices[0]))
            margins.append(float(best.values[0] - best.values[1]))
            nll -= float(torch.log_softmax(logits, dim=-1)[chunk[position + 1]])
    return DecodePass(top1, margins, nll, seconds)


def judge(precision: str, measured: DecodePass, reference: DecodePass) -> Verdict:
    """`measured` at `precision` against `reference`, fp32's pass over the same text."""
    if len(measured.top1) != len(reference.top1):
        raise ValueError("the two passes read different texts")
    same = [a == b for a, b in zip(measured.top1, reference.top1)]
    clear = [i for i, margin in enumerate(reference.margins) if margin >= NEAR_TIE]
    agreement = sum(same) / len(same)
    clear_agreement = sum(same[i] for i in clear) / max(len(clear), 1)
    rise = measured.perplexity / reference.perplexity - 1
    guard = check_precision(precision).guard
    return Verdict(agreement, clear_agreement, len(clear), rise,
                   None if guard is None else guard.passes(agreement, rise))
