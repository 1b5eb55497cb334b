"""Building the lean forward (llama.LlamaModel) from a checkpoint's tensors: read
each layer's weights, fuse q/k/v and gate/up into one product each, put q and k rows
in the pair layout (rope.interleave_heads), hold the products in the precision's
weight format (products.py), and attach an unmerged LoRA beside them.

Layers are built one at a time from a tensor getter, so peak memory stays near one
copy of the weights.
"""

from collections.abc import Callable

import torch

from pimpmyllama.generation.layer import Block
from pimpmyllama.generation.llama import LlamaModel, LlamaSpec
from pimpmyllama.generation.placement import place_block, place_linear
from pimpmyllama.generation.prepared import PreparedProducts
from pimpmyllama.generation.products import Linear, product_for
from pimpmyllama.generation.rope import interleave_heads

Getter = Callable[[str], torch.Tensor | None]
LowRank = Callable[[str], tuple[torch.Tensor, torch.Tensor] | None]


def _stack(parts: list[torch.Tensor]) -> torch.Tensor:
    return parts[0] if len(parts) == 1 else torch.cat(parts)  # one part: no copy


def _stack_optional(parts: list[torch.Tensor | None]) -> torch.Tensor | None:
    if all(p is None for p in parts):
        return None
    if any(p is None for p in parts):
        raise ValueError("some projections have a bias and others not")
    return _stack(parts)


class _Reader:
    """The checkpoint's tensors as the layers need them."""

    def __init__(self, spec: LlamaSpec, get: Getter, low_rank: LowRank | None):
        self.spec, self.get, self.low_rank = spec, get, low_rank

    def need(self, name: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        tensor = self.get(name)
        if tensor is None:
            raise KeyError(name)
        return tensor.to(dtype).contiguous()

    def maybe(self, name: str) -> torch.Tensor | None:
        tensor = self.get(name)
        return None if tensor is None else tensor.float()

    def rotary(self, tensor: torch.Tensor | None, prefix: str) -> torch.Tensor | None:
        """q and k rows go to the pair layout; v (and every other projection) stays."""
        if tensor is None or not prefix.endswith(("q_proj.", "k_proj.")):
            return tensor
        return interleave_heads(tensor, self.spec.head_dim)

    def fused(self, prefixes: list[str]) -> torch.Tensor:
        """The weights of these projections stacked into one (rows in order)."""
        return _stack([self.rotary(self.need(p + "weight"), p) for p in prefixes])

    def fused_bias(self, prefixes: list[str]) -> torch.Tensor | None:
        return _stack_optional([self.rotary(self.maybe(p + "bias"), p) for p in prefixes])

    def factors(self, prefixes: list[str], rows: list[int]) -> tuple[torch.Tensor, torch.Tensor] | None:
        """One LoRA (A, B) for the fused projection: the parts' A stacked, their B block-diagonal."""
        parts = [self.low_rank(p + "weight") if self.low_rank else None for p in prefixes]
        if all(part is None for part in parts):
            return None
        ranks = [0 if part is None else part[0].shape[0] for part in parts]
        a = torch.cat([part[0] for part in parts if part is not None])
        b = torch.zeros(sum(rows), sum(ranks))
        row = col = 0
        for prefix, part, n, r in zip(prefixes, parts, rows, ranks):
            if part is not None:
                b[row : row + n, col : col + r] = self.rotary(part[1], prefix)
            row, col = row + n, col + r
        return a, b


def build_llama(spec: LlamaSpec, get: Getter, dtype: torch.dtype = torch.float32, bits: int | None = None,
                head_bits: int | None = None, low_rank: LowRank | None = None, traced: bool = True,
                prepared: PreparedProducts | None = None, device: torch.device | None = None,
                mapped: Getter | None = None) -> LlamaModel:
    """The model from a tensor getter (Hugging Face names -> tensor or None; KeyError
    for a missing one). `bits` (8 or 4) quantizes every linear layer, the output head
    included (at `head_bits` when given); `dtype` is that of the unquantized weights
    and of the products. `low_rank` (weight name -> LoRA factors (A, scale * B) or
    None) adds an unmerged adapter beside the layers. The residual stream, norms,
    attention and cache stay fp32 at every precision. `prepared`: products kept from an
    earlier load of these weights at this precision (found there, their weights are not
    read), and where this load's are kept. `device` (default the CPU): where the model
    runs; each layer is built on the CPU and moved there as it is made, and off the CPU
    only dense weights are taken (placement.precision_on). `mapped` (name -> the tensor
    as stored, memory-mapped): how the token embeddings are taken when given, as a
    reply reads a few of their rows; each row read is then rounded to `dtype` as
    reading the whole table in `dtype` would round it."""
    device = device or torch.device("cpu")
    if device.type != "cpu" and (bits or head_bits):
        raise ValueError(f"{bits or head_bits}-bit weights run on the CPU only, not on {device}")
    place = (lambda block: block) if device.type == "cpu" else (lambda block: place_block(block, device))
    read = _Reader(spec, get, low_rank)

    def product(prefixes: list[str], make):
        return prepared.product(prefixes[0].rstrip("."), make) if prepared else make()

    def linear(prefixes: list[str], rows: list[int]) -> Linear:
        made = product(prefixes, lambda: product_for(read.fused(prefixes), dtype, bits))
        return Linear.around(made, read.fused_bias(prefixes), read.factors(prefixes, rows))

    q_rows, kv_rows = spec.num_heads * spec.head_dim, spec.num_kv_heads * spec.head_dim
    embed = mapped("model.embed_tokens.weight") if mapped else None
    if embed is None:
        embed = read.need("model.embed_tokens.weight", dtype)
    blocks = []
    for i in range(spec.num_layers):
        p = f"model.layers.{i}."
        blocks.append(place(Block(
            index=i,
            attn_norm=read.need(p + "input_layernorm.weight"),
            qkv=linear([p + f"self_attn.{n}_proj." for n in ("q", "k", "v")], [q_rows, kv_rows, kv_rows]),
            out=linear([p + "self_attn.o_proj."], [spec.hidden_size]),
            mlp_norm=read.need(p + "post_attention_layernorm.weight"),
            gate_up=linear([p + f"mlp.{n}_proj." for n in ("gate", "up")], [spec.intermediate_size] * 2),
            down=linear([p + "mlp.down_proj."], [spec.hidden_size]),
        )))
    norm = read.need("model.norm.weight")
    # At int4 every product rounds its activations to int8 already; an 8-bit head does
    # too, as llama.cpp computes the Q8_0 head of its Q4_1 files (products.Int8).
    int8_activations = bits == 4 and head_bits == 8
    stored_head = None

    def head_weight() -> torch.Tensor:  # tied (or no head stored): the embedding matrix
        nonlocal stored_head
        stored_head = None if spec.tie_word_embeddings else get("lm_head.weight")
        return embed.to(dtype).contiguous() if stored_head is None else stored_head

    made = product(["lm_head."], lambda: product_for(head_weight(), dtype, head_bits or bits, int8_activations))
    head_lora = None if spec.tie_word_embeddings else read.factors(["lm_head."], [spec.vocab_size])
    head = Linear.around(made, None, head_lora)
    if device.type != "cpu":  # (nothing is prepared off the CPU: the head was made here, from its weight)
        embed, norm, head = embed.to(device), norm.to(device), place_linear(head, device)
        if stored_head is None:  # tied: the head's weight is the embedding's, one copy on the device
            head.product.weight = embed
    return LlamaModel(spec, embed, blocks, norm, head, bits, traced, device, embed_dtype=dtype)
