"""Attention as the layer (layer.py) calls it: `attention(i, qkv)` takes layer i's
fused projection qkv [T, (H + 2 KV) * hd] (q and k rows in the pair layout, rope.py),
rotates q and k, writes k and v into the KV cache at their positions, and returns the
attended values [T, H * hd], query head h reading kv head h / (H / KV).

One object serves one forward call (its positions, rotations and cache views), for
all the layers; three strategies, exact alike up to float rounding, and a batch of
single-position ones (one per sequence):
- `PromptAttention`: many positions, causal, PyTorch's fused SDPA.
- `OneQueryAttention`: one position, written with PyTorch's operations.
- `FusedOneQueryAttention`: one position, our kernel (kernels/decode.cpp `attend_one`).
- `BatchAttention`: one position of each of several sequences, each through its own
  OneQueryAttention; `FusedBatchAttention`: the same through one call of our kernel
  (`attend_rows`) per layer, each row exactly as `attend_one` computes it.
"""

import torch
import torch.nn.functional as F

from pimpmyllama.generation.rope import apply_rotations

Heads = tuple[int, int, int]  # query heads H, key/value heads KV, head_dim hd: plain ints, so a trace records no shapes


class PromptAttention:
    """Positions pos0 .. pos0 + T - 1 of `keys`/`values` ([layers, KV, max_len, hd]),
    each seeing the cache up to itself; `rotations` [T, hd / 2] complex."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, pos0: int, rotations: torch.Tensor, heads: Heads):
        self.keys, self.values, self.rotations, self.heads = keys, values, rotations, heads
        self.pos0, self.end = pos0, pos0 + rotations.shape[0]
        self.mask = None
        if pos0 > 0:  # a chunk after a cached prefix: causal with an offset
            self.mask = torch.ones(self.end - pos0, self.end, dtype=torch.bool, device=keys.device).tril(diagonal=pos0)

    def __call__(self, i: int, qkv: torch.Tensor) -> torch.Tensor:
        (H, KV, hd), T = self.heads, qkv.shape[0]
        # Queries and keys rotated together, in one complex multiplication.
        qk = apply_rotations(qkv[:, : (H + KV) * hd].view(T, H + KV, hd), self.rotations)
        self.keys[i, :, self.pos0 : self.end] = qk[:, H:].transpose(0, 1)
        self.values[i, :, self.pos0 : self.end] = qkv[:, (H + KV) * hd :].view(T, KV, hd).transpose(0, 1)
        keys, values = self.keys[i, :, : self.end], self.values[i, :, : self.end]
        # SDPA gets 4-D inputs: with 3-D ones the CPU build falls back from its
        # fused kernel to a math path several times slower.
        o = F.scaled_dot_product_attention(qk[:, :H].transpose(0, 1)[None], keys[None], values[None],
                                           attn_mask=self.mask, is_causal=self.mask is None, enable_gqa=True)
        return o[0].transpose(0, 1).reshape(T, H * hd)


class OneQueryAttention:
    """The token at `position` ([1], long): keys/values are the cache's views
    [layers, KV, position + 1, hd]; `rotation` [1, hd / 2] complex. Tensor operations
    only, so that one trace serves every position."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, position: torch.Tensor, rotation: torch.Tensor,
                 heads: Heads):
        self.keys, self.values, self.position, self.rotation, self.heads = keys, values, position, rotation, heads

    def __call__(self, i: int, qkv: torch.Tensor) -> torch.Tensor:
        H, KV, hd = self.heads
        qk = apply_rotations(qkv[:, : (H + KV) * hd].view(1, H + KV, hd), self.rotation)[0]
        self.keys[i].index_copy_(1, self.position, qk[H:, None])
        self.values[i].index_copy_(1, self.position, qkv[:, (H + KV) * hd :].view(KV, 1, hd))
        # the query heads of each key/value head as one batch; every cached position
        # is visible, so no mask
        q = qk[:H].view(1, KV, H // KV, hd)
        return F.scaled_dot_product_attention(q, self.keys[i][None], self.values[i][None]).view(1, H * hd)


class FusedOneQueryAttention:
    """OneQueryAttention as one call of our kernel; `rotation` [hd / 2, 2] (cos, sin).
    The kernel holds head_dim 16..256 in steps of 16 and up to 16 query heads per kv
    head (`fits`)."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, rotation: torch.Tensor, heads: Heads):
        self.keys, self.values, self.rotation, self.heads = keys, values, rotation, heads[0]

    @staticmethod
    def fits(heads: Heads) -> bool:
        H, KV, hd = heads
        return hd % 16 == 0 and hd <= 256 and H // KV <= 16

    def __call__(self, i: int, qkv: torch.Tensor) -> torch.Tensor:
        return torch.ops.pml.attend_one(qkv, self.rotation, self.keys[i], self.values[i], self.heads)


class BatchAttention:
    """One new token for each of several sequences, each with its own cache: row b of
    `qkv` goes to `singles[b]` (a OneQuery or FusedOneQuery attention over that
    sequence's cache), so every row is attended exactly as it would be alone."""

    def __init__(self, singles: list["OneQueryAttention | FusedOneQueryAttention"]):
        self.singles = singles

    def __call__(self, i: int, qkv: torch.Tensor) -> torch.Tensor:
        return torch.cat([single(i, qkv[b : b + 1]) for b, single in enumerate(self.singles)])


class FusedBatchAttention:
    """One new token for each of several sequences, one kernel call per layer: row b of
    `qkv` sits at `positions[b]` of the cache `caches_k[b]` / `caches_v[b]` (whole
    caches, [layers, KV, max_len, hd]) with `rotations[b]` [hd / 2, 2] (cos, sin)."""

    def __init__(self, caches_k: list[torch.Tensor], caches_v: list[torch.Tensor], positions: list[int],
                 rotations: torch.Tensor, heads: Heads):
        self.keys, self.values, self.rotations, self.heads = caches_k, caches_v, rotations, heads[0]
        self.ends = [pos + 1 for pos in positions]

    def __call__(self, i: int, qkv: torch.Tensor) -> torch.Tensor:
        return torch.ops.pml.attend_rows(qkv, self.rotations, self.keys, self.values, self.ends, i, self.heads)


Attention = PromptAttention | OneQueryAttention | FusedOneQueryAttention | BatchAttention | FusedBatchAttention
