"""Weight-only quantization of linear layers, for single-token decoding on the CPU.

Decoding reads every weight once per token, so on a CPU its speed is set by the
bytes it reads and by how fast they turn into products: int8 reads a quarter of
fp32's bytes, int4 an eighth.

- int8: symmetric, one scale per output row: w ≈ q · s, q in [-127, 127].
- int4: asymmetric, one fp16 scale and minimum per group of 32 inputs of a row:
  w ≈ q · d + m, q in [0, 15] (llama.cpp's Q4_1).

Single rows (decoding) go through our own kernels (kernels/gemv.cpp) where the CPU
has AVX-512 VNNI: fp32 activations in, fp32 products out; at int4 the activations
are rounded to int8 per group of 32 inside the kernel, as llama.cpp does. Elsewhere
PyTorch's weight-only kernels (the ones torchao and gpt-fast use) take bf16
activations. A prompt's many rows run faster as a dense bf16 product of the
dequantized weights (prefill).
"""

import torch
import torch.nn.functional as F

from pimpmyllama.generation import kernels

INT4_GROUP = 32


ROWS_AT_A_TIME = 4096  # fp32 temporaries of a few MB, not of the whole matrix (peak memory at load)


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(q int8 [N, K], scales [N]) with weight ≈ q * scales[:, None]."""
    q = torch.empty(weight.shape, dtype=torch.int8)
    scales = torch.empty(weight.shape[0])
    for start in range(0, weight.shape[0], ROWS_AT_A_TIME):
        w = weight[start : start + ROWS_AT_A_TIME].float()
        s = (w.abs().amax(dim=1) / 127).clamp(min=1e-10)
        q[start : start + ROWS_AT_A_TIME] = torch.round(w / s[:, None]).clamp(-127, 127)
        scales[start : start + ROWS_AT_A_TIME] = s
    return q, scales


def quantize_int4(weight: torch.Tensor, group: int = INT4_GROUP) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(q [N, K] in 0..15 as uint8, scales fp16 [N, K/group], minima fp16 [N, K/group])
    with weight ≈ q * scale + minimum, group by group. Each weight is rounded against
    the fp16 scale and minimum that are kept, not the exact ones."""
    n, k = weight.shape
    w = weight.float().reshape(n, k // group, group)
    low, high = w.amin(dim=-1), w.amax(dim=-1)
    minima = low.half()
    scales = ((high - minima.float()) / 15).clamp(min=1e-7).half()
    q = torch.round((w - minima.float()[..., None]) / scales.float()[..., None]).clamp(0, 15).to(torch.uint8)
    return q.reshape(n, k), scales, minima


def pack_nibbles(q: torch.Tensor, group: int = INT4_GROUP) -> torch.Tensor:
    """[N, K] values 0..15 -> [N, K/2] bytes: in each group, byte j holds q[j] in its
    low nibble and q[j + group/2] in its high one (the kernel's layout)."""
    n, k = q.shape
    g = q.reshape(n, k // group, group).to(torch.uint8)
    half = group // 2
    return (g[..., :half] | (g[..., half:] << 4)).reshape(n, k // 2)


def unpack_nibbles(packed: torch.Tensor, group: int = INT4_GROUP) -> torch.Tensor:
    n, half_k = packed.shape
    g = packed.reshape(n, half_k * 2 // group, group // 2)
    return torch.cat([g & 15, g >> 4], dim=-1).reshape(n, half_k * 2)


def int4_supported(weight: torch.Tensor, group: int = INT4_GROUP) -> bool:
    n, k = weight.shape
    return k % group == 0 and n % 16 == 0


class Linear:
    """y = x Wᵀ + b, with W held as the precision asks. A bf16 layer computes in bf16
    and returns bf16, or fp32 when it adds a bias (callers add it into their fp32
    residual stream or cast it, as they need), so that norms and attention keep fp32.

    A quantized layer holds only its quantized weights. Single rows (decoding) go
    through a quantized kernel (fp32 out from ours, bf16 from PyTorch's); many rows
    (a prompt) through a dense bf16 product with the same weights dequantized for the
    call, which is far faster for them and gives the same numbers up to rounding."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype, bits: int | None,
                 low_rank: tuple[torch.Tensor, torch.Tensor] | None = None):
        """`low_rank` (A [r, in], B [out, r]): an unmerged LoRA, added in fp32 as B (A x)."""
        self.dtype = dtype  # of the weights and the products
        self.bias = None if bias is None else bias.float()
        self.low_rank = None if low_rank is None else tuple(t.float().contiguous() for t in low_rank)
        self.bits = bits if bits in (8, 4) else None
        if self.bits == 4 and not int4_supported(weight):
            self.bits = 8  # a shape the int4 kernels do not take
        self.dense = weight.to(dtype).contiguous() if self.bits is None else None
        self.shape = tuple(weight.shape)
        self.ours = self.bits is not None and kernels.load()  # our kernels, or PyTorch's
        if self.bits == 8:
            self.q, scales = quantize_int8(weight)
            self.scales = scales if self.ours else scales.to(dtype)
        elif self.bits == 4:
            q, self.d, self.m = quantize_int4(weight)
            self.nibbles = pack_nibbles(q)
            if not self.ours:
                self.q = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q.int(), 1)
                # PyTorch's kernel computes (q - 8) * scale + zero: zero = minimum + 8 * scale
                zeros = self.m.float() + 8 * self.d.float()
                self.scales = torch.stack([self.d.float(), zeros], dim=-1).transpose(0, 1).contiguous().to(dtype)

    def dequantized(self) -> torch.Tensor:
        if self.bits is None:
            return self.dense
        if self.bits == 8:
            return (self.q.to(self.dtype) * self.scales[:, None].to(self.dtype)).to(self.dtype)
        if self.ours and self.dtype == torch.bfloat16:
            return torch.ops.pml.q4_dequant(self.nibbles, self.d, self.m)  # the same numbers, in one pass
        n, k = self.shape
        q = unpack_nibbles(self.nibbles).reshape(n, k // INT4_GROUP, INT4_GROUP).float()
        return (q * self.d.float()[..., None] + self.m.float()[..., None]).reshape(n, k).to(self.dtype)

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
        if self.bits is not None and x.shape[0] == 1:
            if self.ours:
                if self.bits == 8:
                    return torch.ops.pml.q8_gemv(x.float(), self.q, self.scales)
                return torch.ops.pml.q4_gemv(x.float(), self.nibbles, self.d, self.m)
            if self.bits == 8:
                return torch.ops.aten._weight_int8pack_mm(x.to(self.dtype), self.q, self.scales)
            return torch.ops.aten._weight_int4pack_mm_for_cpu(x.to(self.dtype), self.q, INT4_GROUP, self.scales)
        x = x.to(self.dtype)
        return F.linear(x, self.dense if self.bits is None else self.dequantized())

    def nbytes(self) -> int:
        held = [self.dense, self.bias, *(self.low_rank or ())]
        if self.bits:
            held += [getattr(self, name, None) for name in ("q", "scales", "nibbles", "d", "m")]
        return sum(t.numel() * t.element_size() for t in held if t is not None)
