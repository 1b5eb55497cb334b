"""The linear layers' products, one class per weight format.

Each format knows its own kernels: single rows (decoding; `rows` for several
decoding rows at once) go through a quantized
kernel — ours (kernels/gemv.cpp, fp32 in and out) where they built, else PyTorch's
weight-only kernels (bf16 in and out) — and many rows (a prompt) through a dense
bf16 product of the same weights dequantized for the call, which is far faster for
them and gives the same numbers up to rounding. Which kernel a layer uses is decided
once, when it is made; calling it never asks about its format.

- `Dense`: fp32 or bf16 weights, products in that dtype.
- `Int8`: a scale and a minimum per group of 32 inputs (quant.quantize_int8_minima)
  where our kernels run — llama.cpp's Q8_0 (a scale per group) for int4's head —
  else one scale per output row (quant.quantize_int8).
- `Int4`: a scale and a minimum per group of 32 inputs (quant.quantize_int4, llama.cpp's Q4_1).

`Linear` adds what every format shares: an optional fp32 bias and an optional
unmerged LoRA, both added in fp32.
"""

import torch
import torch.nn.functional as F

from pimpmyllama.generation import kernels
from pimpmyllama.generation.quant import (
    INT4_GROUP,
    int4_supported,
    int8_groups_supported,
    pack_int4_blocks,
    pack_int8_blocks,
    pack_nibbles,
    quantize_int4,
    quantize_int8,
    quantize_int8_groups,
    quantize_int8_minima,
    unpack_int4_blocks,
    unpack_nibbles,
)


def _as(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    # decided while tracing, so a step at the weights' dtype records no conversion
    return x if x.dtype == dtype else x.to(dtype)


def _bytes(*tensors: torch.Tensor | None) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)


def _grouped(q: torch.Tensor, scales: torch.Tensor, minima: torch.Tensor | None) -> torch.Tensor:
    """q [N, K] times its scales [N, groups] (+ minima), group by group, in fp32: a row
    is one group when there is one scale per row."""
    n, k = q.shape
    w = q.float().reshape(n, scales.shape[-1] if scales.dim() == 2 else 1, -1) * scales.float().reshape(n, -1, 1)
    if minima is not None:
        w = w + minima.float().reshape(n, -1, 1)
    return w.reshape(n, k)


class Dense:
    """Unquantized weights held as `dtype`; x @ Wᵀ in that dtype."""

    bits = None
    ours = False

    def __init__(self, weight: torch.Tensor, dtype: torch.dtype):
        self.weight = weight.to(dtype).contiguous()

    def state(self) -> tuple[dict, dict[str, torch.Tensor]]:
        return {}, {"weight": self.weight}

    @classmethod
    def restore(cls, facts: dict, tensors: dict[str, torch.Tensor], dtype: torch.dtype) -> "Dense":
        return cls(tensors["weight"], dtype)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(_as(x, self.weight.dtype), self.weight)

    rows = __call__

    def nbytes(self) -> int:
        return _bytes(self.weight)


class Int8:
    """Where our kernels run and a row is whole groups of 32: w ≈ q · d + m, q in 0..255,
    an fp16 scale and minimum per group, one row through ours (fp32 in and out) — or,
    with `int8_activations`, w ≈ q · d (llama.cpp's Q8_0 grid). Otherwise w ≈ q · d with
    one scale per output row, one row through PyTorch's `_weight_int8pack_mm` (bf16 out).
    Many rows: bf16 product of the dequantized weights.

    Why a minimum: the default model was made from its Q4_1 file, so its layers sit on a
    4-bit grid with a minimum, which this grid holds all but exactly where Q8_0's
    symmetric one rounds every weight again. Top-1 agreement with fp32 at every position
    of bench/precision.py's text: 99.2 % against 97.3 % (fake-quantized: 99.22 % against
    97.36 %); on the same model moved off any grid (noise added), the two are level."""

    bits = 8

    def __init__(self, weight: torch.Tensor, dtype: torch.dtype, ours: bool, int8_activations: bool = False):
        """`int8_activations`: our rows also round the activations to int8 per group of 32
        and take integer products (kernels/blocks.cpp, llama.cpp's Q8_0 x Q8_0: 3.8x
        faster at 32 rows, ~0.5 % from the fp32 products)."""
        self.dtype, self.ours = dtype, ours and int8_groups_supported(weight)
        if self.ours and int8_activations:
            q, scales = quantize_int8_groups(weight)  # scales [N, K/32] fp16
            self._hold(q, scales, None, pack_int8_blocks(q, scales))
        elif self.ours:
            self._hold(*quantize_int8_minima(weight), None)  # q uint8, scales and minima [N, K/32] fp16
        else:
            q, scales = quantize_int8(weight)
            self._hold(q, scales.to(dtype), None, None)  # [N]

    def _hold(self, q: torch.Tensor, scales: torch.Tensor, minima: torch.Tensor | None,
              blocks: torch.Tensor | None) -> None:
        self.q, self.scales, self.minima, self.blocks = q, scales, minima, blocks
        if not self.ours:
            self._row = self._pytorch_row
        else:
            self._row = self._ours_row if blocks is None else self._ours_blocks_row

    def state(self) -> tuple[dict, dict[str, torch.Tensor]]:
        held = {"q": self.q, "scales": self.scales, "minima": self.minima, "blocks": self.blocks}
        return {"ours": self.ours}, {name: t for name, t in held.items() if t is not None}

    @classmethod
    def restore(cls, facts: dict, tensors: dict[str, torch.Tensor], dtype: torch.dtype) -> "Int8":
        """The product `state` described, without quantizing again."""
        product = cls.__new__(cls)
        product.dtype, product.ours = dtype, facts["ours"]
        product._hold(tensors["q"], tensors["scales"], tensors.get("minima"), tensors.get("blocks"))
        return product

    def _ours_row(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.pml.q8_gemv(_as(x, torch.float32), self.q, self.scales, self.minima)

    def _ours_blocks_row(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.pml.q8_blocks_gemv(_as(x, torch.float32), self.blocks, self.q.shape[0])

    def _pytorch_row(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten._weight_int8pack_mm(_as(x, self.dtype), self.q, self.scales)

    def dequantized(self) -> torch.Tensor:
        """q · d (+ m) in fp32 (q · d exact: 8-bit integers times fp16 or bf16 scales; one
        rounding with m), rounded to the dtype."""
        if self.minima is not None and self.dtype == torch.bfloat16:  # ours, in one pass, to the same numbers
            return torch.ops.pml.q8_dequant(self.q, self.scales, self.minima)
        return _grouped(self.q, self.scales, self.minima).to(self.dtype)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 1:
            return self._row(x)
        return F.linear(_as(x, self.dtype), self.dequantized())

    def rows(self, x: torch.Tensor) -> torch.Tensor:
        """Each row through the single-row kernel: a few decoding rows at once read the
        weights once, and every row gets the numbers it would get alone."""
        return self._row(x)

    def nbytes(self) -> int:
        return _bytes(self.q, self.scales, self.minima, self.blocks)


# A prompt (or a prompt's chunk) of up to this many rows goes the way decoding goes:
# our int4 kernel (and our attention, llama.py) row by row. There it beats the bf16
# product of the dequantized weights — on the default model's layers, one thread,
# 2.1x at 32 rows, 1.4x at 128, 1.2x at 256, level at 512 (it reads 4-bit weights
# once for a tile of rows; the dense product first writes them out as bf16).
SHORT_PROMPT_ROWS = 256


class Int4:
    """w ≈ q · d + m per group of 32 (fp16 d and m). One row: ours (fp32 out; the
    activations rounded to int8 per group inside the kernel, as llama.cpp does; the
    weights in the kernel's blocks of 16 rows, quant.pack_int4_blocks; ours also takes
    prompts of up to SHORT_PROMPT_ROWS rows) or PyTorch's `_weight_int4pack_mm_for_cpu` (bf16
    out, the packed nibbles kept for dequantizing); many rows: bf16 product of the
    dequantized weights."""

    bits = 4

    def __init__(self, weight: torch.Tensor, dtype: torch.dtype, ours: bool):
        self.dtype, self.ours = dtype, ours
        self.shape = tuple(weight.shape)
        q, d, m = quantize_int4(weight)
        if ours:
            self._hold({"blocks": pack_int4_blocks(q, d, m)})
        else:
            # PyTorch's kernel computes (q - 8) * scale + zero: zero = minimum + 8 * scale
            zeros = m.float() + 8 * d.float()
            self._hold({"nibbles": pack_nibbles(q), "d": d, "m": m,
                        "q": torch.ops.aten._convert_weight_to_int4pack_for_cpu(q.int(), 1),
                        "scales": torch.stack([d.float(), zeros], dim=-1).transpose(0, 1).contiguous().to(dtype)})

    _HELD = ("blocks", "nibbles", "d", "m", "q", "scales")

    def _hold(self, tensors: dict[str, torch.Tensor]) -> None:
        for name in self._HELD:
            setattr(self, name, tensors.get(name))
        self._row = self._ours_row if self.ours else self._pytorch_row
        # ours dequantizes to bf16 in one pass, to the same numbers
        self._dequantize = (self._ours_dequantized if self.ours and self.dtype == torch.bfloat16
                            else self._torch_dequantized)

    def state(self) -> tuple[dict, dict[str, torch.Tensor]]:
        held = {name: getattr(self, name) for name in self._HELD}
        return {"ours": self.ours, "shape": list(self.shape)}, {k: v for k, v in held.items() if v is not None}

    @classmethod
    def restore(cls, facts: dict, tensors: dict[str, torch.Tensor], dtype: torch.dtype) -> "Int4":
        """The product `state` described, without quantizing again."""
        product = cls.__new__(cls)
        product.dtype, product.ours, product.shape = dtype, facts["ours"], tuple(facts["shape"])
        product._hold(tensors)
        return product

    def _ours_row(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.pml.q4_blocks_gemv(_as(x, torch.float32), self.blocks, self.shape[0])

    def _pytorch_row(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten._weight_int4pack_mm_for_cpu(_as(x, self.dtype), self.q, INT4_GROUP, self.scales)

    def _ours_dequantized(self) -> torch.Tensor:
        return torch.ops.pml.q4_blocks_dequant(self.blocks, self.shape[0])

    def _torch_dequantized(self) -> torch.Tensor:
        n, k = self.shape
        if self.blocks is not None:
            q, d, m = unpack_int4_blocks(self.blocks, n)
        else:
            q, d, m = unpack_nibbles(self.nibbles), self.d, self.m
        return _grouped(q, d, m).to(self.dtype)

    def dequantized(self) -> torch.Tensor:
        return self._dequantize()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] <= (SHORT_PROMPT_ROWS if self.ours else 1):
            return self._row(x)
        return F.linear(_as(x, self.dtype), self.dequantized())

    def rows(self, x: torch.Tensor) -> torch.Tensor:
        """Each row through the single-row kernel: a few decoding rows at once read the
        weights once, and every row gets the numbers it would get alone."""
        return self._row(x)

    def nbytes(self) -> int:
        return _bytes(self.q, self.scales, self.nibbles, self.d, self.m, self.blocks)


Product = Dense | Int8 | Int4
PRODUCTS = {cls.__name__: cls for cls in (Dense, Int8, Int4)}  # by the names prepared.py keeps


def product_for(weight: torch.Tensor, dtype: torch.dtype, bits: int | None, int8_activations: bool = False) -> Product:
    """The format `bits` asks for (None: dense at `dtype`); int4 falls back to int8 for
    a shape its kernels do not take. `int8_activations` as in Int8."""
    if bits == 4 and int4_supported(weight):
        return Int4(weight, dtype, kernels.load())
    if bits in (8, 4):
        return Int8(weight, dtype, kernels.load(), int8_activations)
    return Dense(weight, dtype)


class Linear:
    """y = x Wᵀ + b (+ B (A x) for an unmerged LoRA), W in the format `bits` and
    `dtype` say. A bf16 or quantized layer returns its product's dtype (bf16, or fp32
    from our single-row kernels), and fp32 when it adds a bias or a LoRA (sums in fp32
    keep their precision); callers add it into their fp32 residual stream or cast it."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype, bits: int | None,
                 low_rank: tuple[torch.Tensor, torch.Tensor] | None = None, int8_activations: bool = False):
        """`low_rank` (A [r, in], B [out, r]): an unmerged LoRA. `int8_activations` as in Int8."""
        self._hold(product_for(weight, dtype, bits, int8_activations), bias, low_rank)

    @classmethod
    def around(cls, product: Product, bias: torch.Tensor | None,
               low_rank: tuple[torch.Tensor, torch.Tensor] | None = None) -> "Linear":
        """The layer over a product made before (prepared.py keeps them between loads)."""
        layer = cls.__new__(cls)
        layer._hold(product, bias, low_rank)
        return layer

    def _hold(self, product: Product, bias: torch.Tensor | None,
              low_rank: tuple[torch.Tensor, torch.Tensor] | None) -> None:
        self.product = product
        self.bias = None if bias is None else bias.float()
        self.low_rank = None if low_rank is None else tuple(t.float().contiguous() for t in low_rank)

    def __call__(self, x: torch.Tensor, rowwise: bool = False) -> torch.Tensor:
        """`rowwise`: each row as the single-row kernel computes it (decoding several
        sequences at once), not as a prompt's many rows."""
        y = self.product.rows(x) if rowwise else self.product(x)
        if self.low_rank is not None:
            a, b = self.low_rank
            y = y + F.linear(F.linear(_as(x, torch.float32), a), b)
        return y if self.bias is None else y + self.bias

    def nbytes(self) -> int:
        return self.product.nbytes() + _bytes(self.bias, *(self.low_rank or ()))
