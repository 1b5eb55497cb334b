"""The transformer layer, written once: pre-norm attention and gated MLP, each added
into the fp32 residual stream. What varies between a prompt and a decoding step, and
between machines, is passed in: the attention (attention.py) and the small operations
(`TorchOps`, or `KernelOps` where our kernels built). The linear layers are
products.Linear in whatever weight format they were built with.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pimpmyllama.generation.attention import Attention
from pimpmyllama.generation.products import Linear


def fp32(t: torch.Tensor) -> torch.Tensor:
    # decided while tracing, so an fp32 product records no conversion
    return t if t.dtype == torch.float32 else t.float()


class TorchOps:
    """RMS norm and the gated activation with PyTorch's operations."""

    def __init__(self, hidden_size: int, eps: float):
        self.shape, self.eps = (hidden_size,), eps

    def rms_norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, self.shape, weight, self.eps)

    def silu_mul(self, gate_up: torch.Tensor) -> torch.Tensor:
        gate, up = gate_up.chunk(2, dim=-1)
        return F.silu(gate) * up


class KernelOps:
    """The same, one call each (kernels/decode.cpp): on two cores PyTorch's versions
    cost more in dispatch and threading than in arithmetic for a single row (RMS norm
    is five operations there). fp32 in and out."""

    def __init__(self, eps: float):
        self.eps = eps

    def rms_norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return torch.ops.pml.rms_norm(x, weight, self.eps)

    def silu_mul(self, gate_up: torch.Tensor) -> torch.Tensor:
        return torch.ops.pml.silu_mul(gate_up)


SmallOps = TorchOps | KernelOps


@dataclass
class Block:
    """Layer `index` of the model; q and k rows of `qkv` in the pair layout (rope.py)."""

    index: int
    attn_norm: torch.Tensor
    qkv: Linear
    out: Linear
    mlp_norm: torch.Tensor
    gate_up: Linear
    down: Linear

    def __call__(self, x: torch.Tensor, attention: Attention, ops: SmallOps, rowwise: bool = False) -> torch.Tensor:
        """x [T, hidden] fp32 -> the same after this layer; `attention(index, qkv)` as in
        attention.py; `rowwise` as in products.Linear (rows of different sequences)."""
        qkv = fp32(self.qkv(ops.rms_norm(x, self.attn_norm), rowwise))
        x = x + self.out(attention(self.index, qkv), rowwise)
        return x + self.down(ops.silu_mul(fp32(self.gate_up(ops.rms_norm(x, self.mlp_norm), rowwise))), rowwise)
