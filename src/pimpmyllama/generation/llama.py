"""A lean forward pass for Llama-family models, with a preallocated KV cache.

Decoding a small model on a CPU is bound by per-operation overhead more than by
arithmetic, so this forward does as few operations per layer as it can: fused
q/k/v and gate/up projections, a cache written in place, and for single-token
steps the query heads of each key/value group attend as one small batch (exact,
and needs no mask). The weights and tensor names are those of Hugging Face
checkpoints; `tests/generation/test_llama.py` checks parity with transformers.

Single-token steps (decoding) run as a TorchScript trace of the same operations:
the trace replays them from C++, without the Python interpreter between the small
operations of each layer (75 → 97 tokens/s at best, int4, 2 cores). Where our
kernels built (kernels/), the step's small operations are one call each: the two
RMS norms, the rotation + cache write + attention, and the gated activation; on
this machine PyTorch's versions cost more in dispatch and threading than in
arithmetic (RMS norm alone is five operations there). The traced step gives the
same logits and cache as the Python step, to the bit (`tests/generation/test_llama.py`).
`torch.compile` was measured too: three minutes to compile on this machine, and
slower decoding.
"""

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pimpmyllama.generation import kernels
from pimpmyllama.generation.quant import Linear
from pimpmyllama.generation.rope import (
    SUPPORTED_ROPE_TYPES,
    apply_rotations,
    interleave_heads,
    rope_parameters,
    rope_rotations,
)

LEAN_ARCHITECTURES = ("llama", "mistral", "qwen2")


@dataclass(frozen=True)
class LlamaSpec:
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    rms_norm_eps: float
    rope: dict
    tie_word_embeddings: bool
    max_position_embeddings: int

    @classmethod
    def from_config(cls, config: dict) -> "LlamaSpec":
        heads = config["num_attention_heads"]
        return cls(
            vocab_size=config["vocab_size"],
            hidden_size=config["hidden_size"],
            num_layers=config["num_hidden_layers"],
            num_heads=heads,
            num_kv_heads=config.get("num_key_value_heads") or heads,
            head_dim=config.get("head_dim") or config["hidden_size"] // heads,
            intermediate_size=config["intermediate_size"],
            rms_norm_eps=config.get("rms_norm_eps", 1e-6),
            rope=rope_parameters(config),
            tie_word_embeddings=config.get("tie_word_embeddings", False),
            max_position_embeddings=config.get("max_position_embeddings", 2048),
        )


def lean_unsupported_reason(config: dict) -> str | None:
    """Why the lean forward cannot run this config (None when it can)."""
    kind = config.get("model_type")
    if kind not in LEAN_ARCHITECTURES:
        return f"architecture {kind!r}"
    if config.get("hidden_act", "silu") != "silu":
        return f"activation {config['hidden_act']!r}"
    rope_type = rope_parameters(config)["rope_type"]
    if rope_type not in SUPPORTED_ROPE_TYPES:
        return f"rope type {rope_type!r}"
    if config.get("sliding_window") and config.get("use_sliding_window", True):
        return "sliding-window attention"
    return None


class KVCache:
    """Keys and values of every layer for up to `max_len` positions, and the token
    ids they were computed from (so a following prompt can reuse the shared prefix)."""

    def __init__(self, spec: LlamaSpec, max_len: int, dtype: torch.dtype = torch.float32):
        shape = (spec.num_layers, spec.num_kv_heads, max_len, spec.head_dim)
        self.k = torch.zeros(shape, dtype=dtype)
        self.v = torch.zeros(shape, dtype=dtype)
        self.ids: list[int] = []

    @property
    def max_len(self) -> int:
        return self.k.shape[2]


@dataclass
class _Layer:
    attn_norm: torch.Tensor
    qkv: Linear
    out: Linear
    mlp_norm: torch.Tensor
    gate_up: Linear
    down: Linear


def _cat_optional(parts: list[torch.Tensor | None]) -> torch.Tensor | None:
    if all(p is None for p in parts):
        return None
    if any(p is None for p in parts):
        raise ValueError("some projections have a bias and others not")
    return torch.cat(parts)


def _fp32(t: torch.Tensor) -> torch.Tensor:
    return t if t.dtype == torch.float32 else t.float()


class LlamaModel:
    def __init__(self, spec: LlamaSpec, get: Callable[[str], torch.Tensor | None], dtype=torch.float32,
                 bits: int | None = None, head_bits: int | None = None, traced: bool = True,
                 low_rank: Callable[[str], tuple[torch.Tensor, torch.Tensor] | None] | None = None):
        """Build from a tensor getter (name -> tensor or None); fuses as it goes so that
        peak memory stays near one copy of the weights. `bits` (8 or 4) quantizes
        every linear layer, the output head included (at `head_bits` when given), for
        decoding. `low_rank` (weight name -> LoRA factors (A, scale * B) or None) adds
        an unmerged adapter beside the layers. `traced=False` keeps single-token steps
        on the Python path."""
        self.spec = spec
        self.dtype = dtype
        self.bits = bits

        def factors(names: list[str], rows: list[int], rotary=lambda tensor, name: tensor):
            """One (A, B) for a fused layer: the parts' A stacked, their B block-diagonal."""
            parts = [low_rank(n + "weight") if low_rank else None for n in names]
            if all(part is None for part in parts):
                return None
            ranks = [0 if part is None else part[0].shape[0] for part in parts]
            a = torch.cat([part[0] for part in parts if part is not None])
            b = torch.zeros(sum(rows), sum(ranks))
            row = col = 0
            for name, part, n, r in zip(names, parts, rows, ranks):
                if part is not None:
                    b[row : row + n, col : col + r] = rotary(part[1], name)
                row, col = row + n, col + r
            return a, b

        def linear(weight, bias, lora=None):
            return Linear(weight, bias, dtype, bits, lora)

        def need(name: str, as_dtype=torch.float32) -> torch.Tensor:
            tensor = get(name)
            if tensor is None:
                raise KeyError(name)
            return tensor.to(as_dtype).contiguous()

        def maybe(name: str) -> torch.Tensor | None:
            tensor = get(name)
            return None if tensor is None else tensor.float()

        # The residual stream, norms, attention and cache stay fp32 at every precision;
        # the linear layers hold their weights as `dtype` and `bits` say.
        self.embed = need("model.embed_tokens.weight", dtype)
        q_rows, kv_rows = spec.num_heads * spec.head_dim, spec.num_kv_heads * spec.head_dim
        self.layers = []
        for i in range(spec.num_layers):
            p = f"model.layers.{i}."
            attn = [p + f"self_attn.{n}_proj." for n in ("q", "k", "v")]
            mlp = [p + f"mlp.{n}_proj." for n in ("gate", "up")]

            def rotary(tensor, name):  # q and k rows go to the pair layout; v stays
                return tensor if tensor is None or name.endswith("v_proj.") else interleave_heads(tensor, spec.head_dim)

            self.layers.append(
                _Layer(
                    attn_norm=need(p + "input_layernorm.weight"),
                    qkv=linear(torch.cat([rotary(need(a + "weight"), a) for a in attn]),
                               _cat_optional([rotary(maybe(a + "bias"), a) for a in attn]),
                               factors(attn, [q_rows, kv_rows, kv_rows], rotary)),
                    out=linear(need(p + "self_attn.o_proj.weight"), maybe(p + "self_attn.o_proj.bias"),
                               factors([p + "self_attn.o_proj."], [spec.hidden_size])),
                    mlp_norm=need(p + "post_attention_layernorm.weight"),
                    gate_up=linear(torch.cat([need(m + "weight") for m in mlp]),
                                   _cat_optional([maybe(m + "bias") for m in mlp]),
                                   factors(mlp, [spec.intermediate_size] * 2)),
                    down=linear(need(p + "mlp.down_proj.weight"), maybe(p + "mlp.down_proj.bias"),
                                factors([p + "mlp.down_proj."], [spec.hidden_size])),
                )
            )
        self.norm = need("model.norm.weight")
        head = None if spec.tie_word_embeddings else get("lm_head.weight")
        self.head = Linear(self.embed if head is None else head, None, dtype, head_bits or bits,
                           None if head is None else factors(["lm_head."], [spec.vocab_size]))
        self._rotations = torch.empty(0, dtype=torch.complex64)
        self.traced = traced
        # our kernels for the step's small operations, where they built (kernels/)
        # (attend_one holds head_dim 16..256 in steps of 16, up to 16 query heads per kv head)
        self.fused = (kernels.load() and spec.head_dim % 16 == 0 and spec.head_dim <= 256
                      and spec.num_heads // spec.num_kv_heads <= 16)
        self._step = None  # the traced single-token step, made on first use

    def new_cache(self, max_len: int) -> KVCache:
        """fp32 at every precision. Our attention kernel also reads an fp16 cache (as
        llama.cpp keeps it), which took int4 decoding at a 1024-token context from ~54 to
        ~69 tokens/s here; but it changed the default model's greedy replies enough that
        the end-to-end memory test's answer lost the recalled fact, so it is not used."""
        return KVCache(self.spec, max_len)

    def _rope(self, pos0: int, length: int) -> torch.Tensor:
        end = pos0 + length
        if self._rotations.shape[0] < end:
            size = max(end, 2 * self._rotations.shape[0], 256)
            self._rotations = rope_rotations(self.spec.head_dim, self.spec.rope, size)
        return self._rotations[pos0:end]

    @torch.inference_mode()
    def forward(self, ids: list[int], cache: KVCache, pos0: int, all_logits: bool = False) -> torch.Tensor:
        """Logits for the last position ([vocab]) or all positions ([T, vocab]) of
        `ids`, which sit at positions pos0.. of the sequence held in `cache`."""
        s = self.spec
        T = len(ids)
        end = pos0 + T
        if end > cache.max_len:
            raise ValueError(f"positions up to {end} do not fit a cache of {cache.max_len}")
        rotations = self._rope(pos0, T)
        if T == 1:
            return self._decode_step(ids[0], cache, pos0, rotations)
        H, KV, hd = s.num_heads, s.num_kv_heads, s.head_dim
        mask = None
        if pos0 > 0:  # a chunk after a cached prefix: causal with an offset
            mask = torch.ones(T, end, dtype=torch.bool).tril(diagonal=pos0)
        x = self.embed[torch.tensor(ids, dtype=torch.long)].float()
        eps = s.rms_norm_eps
        for i, layer in enumerate(self.layers):
            h = F.rms_norm(x, (s.hidden_size,), layer.attn_norm, eps)
            qkv = layer.qkv(h).float()
            # Queries and keys rotated together, in one complex multiplication.
            qk = apply_rotations(qkv[:, : (H + KV) * hd].view(T, H + KV, hd), rotations)
            q = qk[:, :H].transpose(0, 1)
            cache.k[i, :, pos0:end] = qk[:, H:].transpose(0, 1)
            cache.v[i, :, pos0:end] = qkv[:, (H + KV) * hd :].view(T, KV, hd).transpose(0, 1)
            keys, values = cache.k[i, :, :end], cache.v[i, :, :end]
            # SDPA gets 4-D inputs: with 3-D ones the CPU build falls back from its
            # fused kernel to a math path several times slower.
            o = F.scaled_dot_product_attention(
                q[None], keys[None], values[None], attn_mask=mask, is_causal=mask is None, enable_gqa=True
            )[0].transpose(0, 1)
            x = x + layer.out(o.reshape(T, H * hd))
            h = F.rms_norm(x, (s.hidden_size,), layer.mlp_norm, eps)
            gate, up = layer.gate_up(h).float().chunk(2, dim=-1)
            x = x + layer.down(F.silu(gate) * up)
        if not all_logits:
            x = x[-1:]
        logits = self.head(F.rms_norm(x, (s.hidden_size,), self.norm, eps)).float()
        return logits if all_logits else logits[0]

    def _one_token(self, x: torch.Tensor, rotation: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                   position: torch.Tensor) -> torch.Tensor:
        """Logits [1, vocab] for one token: x [1, hidden] (its embedding), rotation
        [1, head_dim / 2], keys/values the cache's views [layers, kv heads, end, head_dim]
        where end - 1 = `position` ([1], long) is the token's own slot. Written with
        tensor operations only, so that one trace serves every position."""
        s = self.spec
        H, KV, hd = s.num_heads, s.num_kv_heads, s.head_dim
        eps = s.rms_norm_eps
        if self.fused:
            return self._one_token_fused(x, torch.view_as_real(rotation[0]), keys, values)
        for i, layer in enumerate(self.layers):
            h = F.rms_norm(x, (s.hidden_size,), layer.attn_norm, eps)
            qkv = layer.qkv(h).float()
            qk = apply_rotations(qkv[:, : (H + KV) * hd].view(1, H + KV, hd), rotation)[0]
            keys[i].index_copy_(1, position, qk[H:, None])
            values[i].index_copy_(1, position, qkv[:, (H + KV) * hd :].view(KV, 1, hd))
            # the query heads of each key/value head as one batch; every cached position
            # is visible, so no mask
            q = qk[:H].view(1, KV, H // KV, hd)
            o = F.scaled_dot_product_attention(q, keys[i][None], values[i][None])
            x = x + layer.out(o.view(1, H * hd))
            h = F.rms_norm(x, (s.hidden_size,), layer.mlp_norm, eps)
            gate, up = layer.gate_up(h).float().chunk(2, dim=-1)
            x = x + layer.down(F.silu(gate) * up)
        return self.head(F.rms_norm(x, (s.hidden_size,), self.norm, eps)).float()

    def _one_token_fused(self, x: torch.Tensor, rotation: torch.Tensor, keys: torch.Tensor,
                         values: torch.Tensor) -> torch.Tensor:
        """_one_token with our kernels (kernels/decode.cpp): the norms, the rotation,
        cache write and attention, and the gated activation as one call each."""
        ops, eps, H = torch.ops.pml, self.spec.rms_norm_eps, self.spec.num_heads
        for i, layer in enumerate(self.layers):
            o = ops.attend_one(_fp32(layer.qkv(ops.rms_norm(x, layer.attn_norm, eps))), rotation, keys[i], values[i], H)
            x = x + layer.out(o)
            x = x + layer.down(ops.silu_mul(_fp32(layer.gate_up(ops.rms_norm(x, layer.mlp_norm, eps)))))
        return _fp32(self.head(ops.rms_norm(x, self.norm, eps)))

    def _decode_step(self, token: int, cache: KVCache, pos: int, rotation: torch.Tensor) -> torch.Tensor:
        end = pos + 1
        inputs = (self.embed[token : token + 1].float(), rotation, cache.k[:, :, :end], cache.v[:, :, :end],
                  torch.tensor([pos]))
        if not self.traced:
            return self._one_token(*inputs)[0]
        if self._step is None:
            with warnings.catch_warnings():  # TorchScript's deprecation notice
                warnings.simplefilter("ignore")
                self._step = torch.jit.trace(self._one_token, inputs, check_trace=False)
            # tracing ran the step once already, writing this token's keys and values
        return self._step(*inputs)[0]
