"""The precisions the engine runs at: the dtype of its activations and cache, and how
its linear layers' weights are held."""

from dataclasses import dataclass

import torch

from pimpmyllama.errors import InvalidInputError


@dataclass(frozen=True)
class Precision:
    name: str
    dtype: torch.dtype  # activations, KV cache and unquantized weights
    weight_bits: int | None = None  # weight-only quantization of every linear layer


DEFAULT_PRECISION = "fp32"  # the fastest that passes the quality guard (bench/precision.py, README)

PRECISIONS = {
    "fp32": Precision("fp32", torch.float32),
    "bf16": Precision("bf16", torch.bfloat16),
    "int8": Precision("int8", torch.bfloat16, 8),
    "int4": Precision("int4", torch.bfloat16, 4),
}


def check_precision(name: str) -> Precision:
    try:
        return PRECISIONS[name]
    except KeyError:
        raise InvalidInputError(f"unknown precision {name!r} (known: {', '.join(PRECISIONS)})") from None
