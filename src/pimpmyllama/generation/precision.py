"""The precisions the engine runs at: the dtype of its activations and cache, and how
its linear layers' weights are held."""

from dataclasses import dataclass

import torch

from pimpmyllama.errors import InvalidInputError


@dataclass(frozen=True)
class Guard:
    """What a precision must keep of fp32's behaviour on a real text, read on the decode
    path (generation/guard.py measures it): the most likely next token the same as
    fp32's at no fewer than `min_agreement` of the positions, and the perplexity no more
    than `max_perplexity_rise` above fp32's (0.01: +1 %)."""

    min_agreement: float
    max_perplexity_rise: float

    def passes(self, agreement: float, perplexity_rise: float) -> bool:
        return agreement >= self.min_agreement and perplexity_rise <= self.max_perplexity_rise


EIGHT_BIT_GUARD = Guard(min_agreement=0.98, max_perplexity_rise=0.01)
FOUR_BIT_GUARD = Guard(min_agreement=0.95, max_perplexity_rise=0.05)


@dataclass(frozen=True)
class Precision:
    name: str
    dtype: torch.dtype  # of the linear layers' products and unquantized weights
    weight_bits: int | None = None  # weight-only quantization of every linear layer
    head_bits: int | None = None  # of the output head, where it differs
    merge_adapters: bool = True  # a LoRA merged into the weights, or run beside them
    guard: Guard | None = None  # None: the reference the others are measured against (fp32)


# The fastest precision that passes its guard on the default model (bench/precision.py:
# int4 agrees with fp32 at 96.5 % of the positions, perplexity -0.1 %).
DEFAULT_PRECISION = "int4"
# A model made by fine-tuning or merging differs from its base by small changes that
# 4-bit rounding erases: the town-hall fine-tune baked into its base answers in its
# format 4 of 4 times at fp32 and int8, 0 of 4 at int4 (docs/fine-tuning.md). Such
# models run at int8 unless told.
TUNED_PRECISION = "int8"
TUNED_BY = ("train", "merge", "merge-lora")

PRECISIONS = {
    "fp32": Precision("fp32", torch.float32),
    "bf16": Precision("bf16", torch.bfloat16, guard=EIGHT_BIT_GUARD),  # no coarser than int8
    "int8": Precision("int8", torch.bfloat16, 8, guard=EIGHT_BIT_GUARD),
    # The output head (for tied models, the embedding matrix) decides between close
    # tokens directly: at 4 bits it alone costs +5.5 % perplexity on the default
    # model, at 8 bits +0.05 % in all (bench/precision.py). llama.cpp's Q4_1 files
    # keep it at 8 bits too (Q8_0).
    # 4-bit rounding of merged weights erases most of a LoRA's small changes, so at
    # int4 an adapter runs beside the quantized base (models/adapters.py).
    "int4": Precision("int4", torch.bfloat16, 4, head_bits=8, merge_adapters=False, guard=FOUR_BIT_GUARD),
}


def default_precision(made_by: str | None) -> str:
    """The precision a model runs at unless told, from the producer that made it."""
    return TUNED_PRECISION if made_by in TUNED_BY else DEFAULT_PRECISION


def check_precision(name: str) -> Precision:
    try:
        return PRECISIONS[name]
    except KeyError:
        raise InvalidInputError(f"unknown precision {name!r} (known: {', '.join(PRECISIONS)})") from None
