"""A lean forward pass for Llama-family models, with a preallocated KV cache.

Decoding a small model on a CPU is bound by per-operation overhead more than by
arithmetic, so this forward does as few operations per layer as it can: fused
q/k/v and gate/up projections (building.py), a cache written in place, and for
single-token steps the query heads of each key/value group attend as one small
batch (exact, and needs no mask). The layer exists once (layer.Block); a prompt and
a single-token step differ only in the attention and the small operations they pass
it (attention.py, layer.py). The weights and tensor names are those of Hugging Face
checkpoints; `tests/generation/test_llama.py` checks parity with transformers.

Single-token steps (decoding) run as a TorchScript trace of the same operations.
The trace replays them from C++, without the Python interpreter between the ~10
operations of each layer, and it is the only way we have to drop that overhead
from a step: `torch.compile` took three minutes to compile here and decoded slower.
It is worth keeping: untraced, the default model decodes at int4 ~20 % slower after
a 128-token prompt (148 vs 186 tokens/s) and ~14 % slower after 1024 (112 vs 130;
bench/ab_engine.py, 2 cores, 2026-12-01). But a trace costs ~150 ms to make and its
first replay ~40 ms more (TorchScript's profiling run), which a one-shot `pml ask` of
a dozen tokens never earns back: a model's first `TRACE_AFTER` single-token steps run
in Python, and the step is traced after them. The traced step gives the same logits and cache as
the Python step, to the bit (`tests/generation/test_llama.py`). TorchScript is
deprecated upstream: `traced=False` keeps the Python path, and it is the one to
keep if tracing goes away.
"""

import warnings
from dataclasses import dataclass

import torch

from pimpmyllama.generation import kernels
from pimpmyllama.generation.attention import (
    Attention,
    BatchAttention,
    FusedBatchAttention,
    FusedOneQueryAttention,
    OneQueryAttention,
    PromptAttention,
)
from pimpmyllama.generation.layer import Block, KernelOps, SmallOps, TorchOps, fp32
from pimpmyllama.generation.products import SHORT_PROMPT_ROWS, Linear
from pimpmyllama.generation.rope import (
    SUPPORTED_ROPE_TYPES,
    rope_parameters,
    rope_rotations,
)

TRACE_AFTER = 32  # single-token steps a model runs in Python before it traces the step (~1 ms a step saved, ~190 ms paid)

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
    rope = rope_parameters(config)
    if rope["rope_type"] not in SUPPORTED_ROPE_TYPES:
        return f"rope type {rope['rope_type']!r}"
    if rope["rope_type"] == "yarn" and (rope.get("mscale") or rope.get("mscale_all_dim")):
        return "yarn with mscale"  # DeepSeek's variant of the attention factor
    if rope["rope_type"] == "yarn" and rope.get("truncate") is False:
        return "yarn without truncation"
    if config.get("sliding_window") and config.get("use_sliding_window", True):
        return "sliding-window attention"
    return None


class KVCache:
    """Keys and values of every layer for up to `max_len` positions, and the token
    ids they were computed from (so a following prompt can reuse the shared prefix).
    fp32 at every precision: an fp16 cache, as llama.cpp keeps, was faster at long
    contexts but moved the default model's greedy replies."""

    def __init__(self, spec: LlamaSpec, max_len: int, device: torch.device | None = None):
        shape = (spec.num_layers, spec.num_kv_heads, max_len, spec.head_dim)
        # Uninitialised: a position is only ever read after it was written, and the
        # memory of positions not yet written is not touched (nor resident).
        self.k = torch.empty(shape, device=device)  # fp32 at every precision
        self.v = torch.empty(shape, device=device)
        self.ids: list[int] = []

    @property
    def max_len(self) -> int:
        return self.k.shape[2]


class _Step(torch.nn.Module):
    """A step function as a module, for tracing, with every tensor the model holds
    registered as a buffer: the trace then reads them from the module instead of
    keeping them as constants of its graph (TorchScript keeps traced graphs for the
    life of the process, and with them the whole model)."""

    def __init__(self, step, holder):
        super().__init__()
        self.step = step
        for n, tensor in enumerate(_tensors(holder)):
            self.register_buffer(f"w{n}", tensor, persistent=False)

    def forward(self, *inputs):
        return self.step(*inputs)


def _tensors(root) -> list[torch.Tensor]:
    """Every tensor reachable from `root` through attributes, lists, tuples and dicts."""
    found: dict[int, torch.Tensor] = {}
    seen: set[int] = set()
    todo = [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, torch.Tensor):
            found[id(obj)] = obj
        elif isinstance(obj, (list, tuple)):
            todo.extend(obj)
        elif isinstance(obj, dict):
            todo.extend(obj.values())
        elif hasattr(obj, "__dict__") and not isinstance(obj, type) and type(obj).__module__.startswith("pimpmyllama"):
            todo.extend(vars(obj).values())
        elif hasattr(type(obj), "__slots__") and type(obj).__module__.startswith("pimpmyllama"):
            todo.extend(getattr(obj, slot) for slot in type(obj).__slots__ if hasattr(obj, slot))
    return list(found.values())


class LlamaModel:
    """The embedding, the layers (layer.Block) and the output head, as building.py
    made them; `forward` runs them over a prompt or a single token."""

    def __init__(self, spec: LlamaSpec, embed: torch.Tensor, blocks: list[Block], norm: torch.Tensor, head: Linear,
                 bits: int | None = None, traced: bool = True, device: torch.device | None = None,
                 embed_dtype: torch.dtype | None = None):
        """`embed` [vocab, hidden] (as the precision holds it, or finer: a row read is rounded to
        `embed_dtype`), `norm` the final RMS norm's
        weight, `bits` the layers' weight format (for callers to read). `traced=False`
        keeps single-token steps on the Python path (else the first `trace_after` of them). `fused` (our kernels for the
        step's attention and small operations, where they built and the shapes fit)
        and `traced` are read at each step; a trace, once made, keeps the strategies it
        was made with. `device`: where the weights are (building.py puts them there) and
        where the cache, the rope table and every intermediate of a step are made; off
        the CPU neither our kernels nor the trace are used (both are CPU-only here), and
        `forward` / `forward_batch` copy their logits to the CPU for the sampler (a
        `meta` model, which has no values, keeps them: it serves to check placement)."""
        self.spec, self.embed, self.layers, self.norm, self.head, self.bits = spec, embed, blocks, norm, head, bits
        self.embed_dtype = embed_dtype or embed.dtype  # each row read is rounded to it (embed may be held finer)
        self.device = device or torch.device("cpu")
        on_cpu = self.device.type == "cpu"
        self.traced = traced and on_cpu
        self.trace_after = TRACE_AFTER  # single-token steps in Python before the trace is made
        self._python_steps = 0
        self._heads = (spec.num_heads, spec.num_kv_heads, spec.head_dim)
        # our kernels for the step's small operations, where they built and the shapes fit
        self.fused = on_cpu and kernels.load() and FusedOneQueryAttention.fits(self._heads)
        # A short prompt's rows can then join a batched step (forward_batch) and get exactly
        # what `forward` gives them: both go row by row through the same kernels, where every
        # layer is our int4 product (an int8 or dense layer takes a prompt as one dense
        # product) with no unmerged LoRA.
        self.prompt_rows_batch = self.fused and all(
            linear.product.bits == 4 and linear.product.ours and linear.low_rank is None
            for block in blocks for linear in (block.qkv, block.out, block.gate_up, block.down))
        self._rotations = torch.empty(0, dtype=torch.complex64, device=self.device)
        self._to_host = (lambda t: t) if self.device.type in ("cpu", "meta") else (lambda t: t.cpu())
        self._step = None  # the traced single-token step, made on first use

    def new_cache(self, max_len: int) -> KVCache:
        return KVCache(self.spec, max_len, self.device)

    def _rope(self, pos0: int, length: int) -> torch.Tensor:
        end = pos0 + length
        if self._rotations.shape[0] < end:
            size = max(end, 2 * self._rotations.shape[0], 256)
            self._rotations = rope_rotations(self.spec.head_dim, self.spec.rope, size, self.device)
        return self._rotations[pos0:end]

    def _logits(self, x: torch.Tensor, attention: Attention, ops: SmallOps, last_only: bool,
                rowwise: bool = False, rows: list[int] | None = None) -> torch.Tensor:
        """x [T, hidden] fp32 through every layer, then the output head: fp32 logits
        [T, vocab] ([1, vocab] when `last_only`, [len(rows), vocab] for `rows` only);
        `rowwise` as in products.Linear."""
        for block in self.layers:
            x = block(x, attention, ops, rowwise)
        if last_only:
            x = x[-1:]
        elif rows is not None:
            x = x[rows]
        return fp32(self.head(ops.rms_norm(x, self.norm), rowwise))

    def _embedded(self, rows) -> torch.Tensor:
        """The embeddings of `rows` (an index tensor or a slice) in fp32, as held at `embed_dtype`."""
        return self.embed[rows].to(self.embed_dtype).float()

    @torch.inference_mode()
    def forward(self, ids: list[int], cache: KVCache, pos0: int, all_logits: bool = False) -> torch.Tensor:
        """Logits for the last position ([vocab]) or all positions ([T, vocab]) of
        `ids`, which sit at positions pos0.. of the sequence held in `cache`."""
        T = len(ids)
        end = pos0 + T
        if end > cache.max_len:
            raise ValueError(f"positions up to {end} do not fit a cache of {cache.max_len}")
        rotations = self._rope(pos0, T)
        if T == 1:
            return self._decode_step(ids[0], cache, pos0, rotations)
        if self.fused and T <= SHORT_PROMPT_ROWS:
            # A short prompt goes the way decoding goes, row by row through our kernels:
            # each row gets exactly what decoding its token would give, so a reply does
            # not depend on how its prompt was cut into chunks or how much of it a cache
            # already held (SDPA's blocks over fp32 rows do not promise that).
            attention = FusedBatchAttention([cache.k] * T, [cache.v] * T, list(range(pos0, end)),
                                            torch.view_as_real(rotations), self._heads)
            ops = KernelOps(self.spec.rms_norm_eps)
        else:
            attention = PromptAttention(cache.k, cache.v, pos0, rotations, self._heads)
            # PyTorch's small operations: over many rows they thread, ours do not
            ops = TorchOps(self.spec.hidden_size, self.spec.rms_norm_eps)
        x = self._embedded(torch.tensor(ids, dtype=torch.long, device=self.device))
        logits = self._logits(x, attention, ops, not all_logits)
        return self._to_host(logits if all_logits else logits[0])

    @torch.inference_mode()
    def forward_batch(self, tokens: list[int], caches: list[KVCache], positions: list[int],
                      logits_of: list[int] | None = None) -> torch.Tensor:
        """Logits [B, vocab] for one new token of each of B sequences: `tokens[b]` sits
        at `positions[b]` of the sequence held in `caches[b]`. One pass through the
        layers for all of them (each weight read once per step), and each row gets the
        logits it would get alone: the single-token step's kernels, row by row.
        Where `prompt_rows_batch`, consecutive rows may be one sequence's prompt tokens
        (the same cache, consecutive positions): each gets what `forward` gives it.
        `logits_of`: the rows whose logits are wanted ([len(logits_of), vocab]); all by default."""
        for cache, pos in zip(caches, positions):
            if pos >= cache.max_len:
                raise ValueError(f"position {pos} does not fit a cache of {cache.max_len}")
        rotations = [self._rope(pos, 1) for pos in positions]
        if self.fused:
            attention = FusedBatchAttention([c.k for c in caches], [c.v for c in caches], positions,
                                            torch.view_as_real(torch.cat(rotations)), self._heads)
        else:
            attention = BatchAttention([OneQueryAttention(c.k[:, :, : pos + 1], c.v[:, :, : pos + 1],
                                                          torch.tensor([pos], device=self.device),
                                                          rotation, self._heads)
                                        for c, pos, rotation in zip(caches, positions, rotations)])
        x = self._embedded(torch.tensor(tokens, dtype=torch.long, device=self.device))
        ops = KernelOps(self.spec.rms_norm_eps) if self.fused else TorchOps(self.spec.hidden_size, self.spec.rms_norm_eps)
        return self._to_host(self._logits(x, attention, ops, last_only=False, rowwise=True, rows=logits_of))

    def _one_token(self, x: torch.Tensor, rotation: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                   position: torch.Tensor) -> torch.Tensor:
        """Logits [1, vocab] for one token: x [1, hidden] (its embedding), rotation
        [1, head_dim / 2], keys/values the cache's views [layers, kv heads, end, head_dim]
        where end - 1 = `position` ([1], long) is the token's own slot. Tensor operations
        only, so that one trace serves every position."""
        if self.fused:
            attention = FusedOneQueryAttention(keys, values, torch.view_as_real(rotation[0]), self._heads)
            ops = KernelOps(self.spec.rms_norm_eps)
        else:
            attention = OneQueryAttention(keys, values, position, rotation, self._heads)
            ops = TorchOps(self.spec.hidden_size, self.spec.rms_norm_eps)
        return self._logits(x, attention, ops, last_only=False)

    def _decode_step(self, token: int, cache: KVCache, pos: int, rotation: torch.Tensor) -> torch.Tensor:
        end = pos + 1
        inputs = (self._embedded(slice(token, token + 1)), rotation, cache.k[:, :, :end], cache.v[:, :, :end],
                  torch.tensor([pos], device=self.device))
        if not self.traced or (self._step is None and self._python_steps < self.trace_after):
            self._python_steps += 1
            return self._to_host(self._one_token(*inputs)[0])
        if self._step is None:
            with warnings.catch_warnings():  # TorchScript's deprecation notice
                warnings.simplefilter("ignore")
                self._step = torch.jit.trace(_Step(self._one_token, self), inputs, check_trace=False)
            # tracing ran the step once already, writing this token's keys and values
        return self._step(*inputs)[0]
