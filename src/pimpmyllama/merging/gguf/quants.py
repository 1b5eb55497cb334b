"""The tensor types of an exported GGUF, per `--quant`: 1-D tensors (norms) stay F32, as
llama.cpp's converter keeps them; matrices take the named type (f32 keeps every weight
exactly, a start for llama.cpp's own quantizer)."""

from dataclasses import dataclass

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType
from gguf.quants import quantize

from pimpmyllama.errors import InvalidInputError

Q = GGMLQuantizationType


@dataclass(frozen=True)
class Quant:
    name: str
    file_type: LlamaFileType
    matrix: GGMLQuantizationType
    embedding: GGMLQuantizationType  # token_embd and output: both the input and the output head


QUANTS = {
    "f16": Quant("f16", LlamaFileType.MOSTLY_F16, Q.F16, Q.F16),
    "f32": Quant("f32", LlamaFileType.ALL_F32, Q.F32, Q.F32),  # the weights as they are (llama.cpp's --outtype f32)
    "q8_0": Quant("q8_0", LlamaFileType.MOSTLY_Q8_0, Q.Q8_0, Q.Q8_0),
    # As the Q4_1 GGUF that ships with the default model: the embedding (also the output
    # head when tied) at 8 bits, where 4 would cost most quality.
    "q4_1": Quant("q4_1", LlamaFileType.MOSTLY_Q4_1, Q.Q4_1, Q.Q8_0),
}


def get_quant(name: str) -> Quant:
    if name not in QUANTS:
        raise InvalidInputError(f"unknown quantization {name!r} (known: {', '.join(QUANTS)})")
    return QUANTS[name]


def tensor_type(quant: Quant, gguf_name: str, shape: tuple[int, ...]) -> GGMLQuantizationType:
    """The type a tensor is stored as; a matrix whose rows do not split into the type's
    blocks falls back to F16, as the converter does."""
    if len(shape) < 2:
        return Q.F32
    kind = quant.embedding if gguf_name.startswith(("token_embd.", "output.")) else quant.matrix
    block = GGML_QUANT_SIZES[kind][0]
    return kind if shape[-1] % block == 0 else Q.F16


def stored_bytes(kind: GGMLQuantizationType, shape: tuple[int, ...]) -> int:
    block, size = GGML_QUANT_SIZES[kind]
    return int(np.prod(shape)) // block * size


def encode(array: np.ndarray, kind: GGMLQuantizationType) -> np.ndarray:
    """`array` (float32) as the bytes (or floats) of `kind`."""
    if kind == Q.F32:
        return array.astype(np.float32, copy=False)
    if kind == Q.F16:
        return array.astype(np.float16)
    return quantize(array, kind)
