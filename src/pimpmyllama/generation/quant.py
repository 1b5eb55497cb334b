"""Weight-only quantization of linear layers, for single-token decoding on the CPU.

Decoding reads every weight once per token, so on a CPU its speed is set by the
bytes it reads: int8 reads a quarter of fp32's, int4 an eighth. The matrix
products are PyTorch's own CPU kernels for weight-only quantized layers (the ones
torchao and gpt-fast use), fed bf16 activations:

- int8: symmetric, one scale per output row: w ≈ q · s, q in [-127, 127].
- int4: asymmetric, one scale and offset per group of 32 inputs of a row:
  w ≈ q · s + m, q in [0, 15] (llama.cpp's Q4_1 layout, in a packed order).

Those kernels are made for one row of activations; a prompt's many rows run faster
as a dense bf16 product of the dequantized weights (prefill).
"""

import torch
import torch.nn.functional as F

INT4_GROUP = 32


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(q int8 [N, K], scales [N]) with weight ≈ q * scales[:, None]."""
    w = weight.float()
    scales = (w.abs().amax(dim=1) / 127).clamp(min=1e-10)
    q = torch.round(w / scales[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scales


def quantize_int4(weight: torch.Tensor, group: int = INT4_GROUP) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(q [N, K] in 0..15 as int32, scales [N, K/group], minima [N, K/group]) with
    weight ≈ q * scale + minimum, group by group."""
    n, k = weight.shape
    w = weight.float().reshape(n, k // group, group)
    low, high = w.amin(dim=-1), w.amax(dim=-1)
    scales = ((high - low) / 15).clamp(min=1e-10)
    q = torch.round((w - low[..., None]) / scales[..., None]).clamp(0, 15).to(torch.int32)
    return q.reshape(n, k), scales, low


def int4_supported(weight: torch.Tensor, group: int = INT4_GROUP) -> bool:
    n, k = weight.shape
    return k % group == 0 and n % 16 == 0


class Linear:
    """y = x Wᵀ + b, with W held as the precision asks. A bf16 or quantized layer
    computes in bf16 and returns bf16, or fp32 when it adds a bias (callers add it
    into their fp32 residual stream or cast it, as they need), so that norms and
    attention keep fp32.

    A quantized layer holds only its quantized weights. Single rows (decoding) go
    through the quantized kernel; many rows (a prompt) through a dense bf16 product
    with the same weights dequantized for the call, which is far faster for them
    and gives the same numbers up to rounding."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype, bits: int | None,
                 low_rank: tuple[torch.Tensor, torch.Tensor] | None = None):
        """`low_rank` (A [r, in], B [out, r]): an unmerged LoRA, added in fp32 as B (A x)."""
        self.dtype = dtype  # of the weights and the products
        self.bias = None if bias is None else bias.float()
        self.low_rank = None if low_rank is None else tuple(t.float().contiguous() for t in low_rank)
        self.bits = bits if bits in (8, 4) else None
        if self.bits == 4 and not int4_supported(weight):
            self.bits = 8  # a shape the int4 kernel does not take
        self.dense = weight.to(dtype).contiguous() if self.bits is None else None
        self.shape = tuple(weight.shape)
        if self.bits == 8:
            self.q, scales = quantize_int8(weight)
            self.scales = scales.to(dtype)
        elif self.bits == 4:
            q, scales, minima = quantize_int4(weight)
            self.nibbles = (q[:, ::2] | (q[:, 1::2] << 4)).to(torch.uint8)  # two per byte, for dequantizing
            self.q = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1)  # the kernel's own layout
            # the kernel computes (q - 8) * scale + zero: zero = minimum + 8 * scale
            zeros = minima + 8 * scales
            self.scales = torch.stack([scales, zeros], dim=-1).transpose(0, 1).contiguous().to(dtype)

    def dequantized(self) -> torch.Tensor:
        if self.bits is None:
            return self.dense
        if self.bits == 8:
            return (self.q.to(self.dtype) * self.scales[:, None]).to(self.dtype)
        # as the kernel does it, from the same bf16 scales and zeros: (q - 8) * scale + zero
        q = torch.stack([self.nibbles & 15, self.nibbles >> 4], dim=-1).reshape(self.shape)
        scale, zero = self.scales.float().transpose(0, 1).unbind(-1)  # [N, K / group] each
        n, k = self.shape
        groups = (q.reshape(n, k // INT4_GROUP, INT4_GROUP).float() - 8) * scale[..., None] + zero[..., None]
        return groups.reshape(n, k).to(self.dtype)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.dtype == torch.float32 and self.low_rank is None:
            return F.linear(x, self.dense, self.bias)
        y = self._product(x)
        if self.low_rank is not None:
            a, b = self.low_rank
            y = y + F.linear(F.linear(x.float(), a), b)
        return y if self.bias is None else y + self.bias  # fp32 sums: they keep their precision

    def _product(self, x: torch.Tensor) -> torch.Tensor:
        if self.dtype == torch.float32:
            return F.linear(x, self.dense)
        x = x.to(self.dtype)
        if self.bits is None:
            return F.linear(x, self.dense)
        if x.shape[0] > 1:
            return F.linear(x, self.dequantized())
        if self.bits == 8:
            return torch.ops.aten._weight_int8pack_mm(x, self.q, self.scales)
        return torch.ops.aten._weight_int4pack_mm_for_cpu(x, self.q, INT4_GROUP, self.scales)

    def nbytes(self) -> int:
        held = [self.dense, self.bias, *(self.low_rank or ())] + ([self.q, self.scales] if self.bits else [])
        if self.bits == 4:
            held.append(self.nibbles)
        return sum(t.numel() * t.element_size() for t in held if t is not None)
