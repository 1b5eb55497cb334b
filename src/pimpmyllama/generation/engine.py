"""The engine: a loaded model that turns a prompt into a stream of text.

One KV cache is kept between calls; a prompt that starts with the tokens of the
previous call (the usual case in a chat, where the history grows at the end)
only computes its new tokens.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import torch

from pimpmyllama.devices import resolve_device
from pimpmyllama.errors import ContextOverflowError, InvalidInputError
from pimpmyllama.generation.kv_memory import KVCacheSize, check_kv_fits, device_memory, kv_cache_size
from pimpmyllama.generation.loading import load_backend
from pimpmyllama.generation.logprobs import TokenLogprob, prompt_logprobs, worth_sending
from pimpmyllama.generation.rope import scaled_config
from pimpmyllama.generation.params import Completion, GenerationParams, Usage  # noqa: F401 (re-exported)
from pimpmyllama.generation.sequence import PREFILL_CHUNK, Sequence, prefill
from pimpmyllama.models.info import read_config
from pimpmyllama.progress import Progress, no_progress
from pimpmyllama.prompting.build import RopeScaling
from pimpmyllama.prompting.check import context_limit
from pimpmyllama.prompting.format import ChatFormat
from pimpmyllama.prompting.tokenizer import Tokenizer


class Generation:
    """Iterate for text deltas; `completion` is set once iteration ends, including
    when it was cut short (Ctrl-C, or the consumer closing it)."""

    def __init__(self, produce: Callable[[Callable[[Completion], None]], Iterator[str]]):
        """`produce(finish)` yields the text deltas and calls `finish(completion)` once
        when it ends, however it ends (a generator does it in its `finally`)."""
        self.completion: Completion | None = None
        self._steps = produce(self._finish)

    def _finish(self, completion: Completion) -> None:
        self.completion = completion

    def __iter__(self) -> Iterator[str]:
        return self._steps

    def close(self) -> None:
        self._steps.close()

    async def __aiter__(self) -> AsyncIterator[str]:
        """The same pieces for an asyncio consumer, each computed in a worker thread."""
        done = object()
        while (piece := await asyncio.to_thread(next, self._steps, done)) is not done:
            yield piece

    def run(self) -> Completion:
        for _ in self:
            pass
        return self.completion


_SAMPLING_KEYS = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k",
                  "repetition_penalty": "repeat_penalty"}


def sampling_defaults(folder: Path) -> dict:
    """The sampling settings a model's authors recommend, from its generation_config.json
    (transformers' names mapped to ours)."""
    import json

    path = folder / "generation_config.json"
    if not path.exists():
        return {}
    config = json.loads(path.read_text())
    return {ours: config[theirs] for theirs, ours in _SAMPLING_KEYS.items() if config.get(theirs) is not None}


class Engine:
    def __init__(self, name: str, folder: Path, backend, tokenizer: Tokenizer, context_length: int,
                 sampling_defaults: dict | None = None, kv_cache: KVCacheSize | None = None):
        """`context_length`: the longest num_ctx it runs (the trained length, or that
        times a rope scaling's factor); `kv_cache`: the cache it was checked for at load."""
        self.name = name
        self.kv_cache = kv_cache
        self.folder = folder
        self.backend = backend
        self.tokenizer = tokenizer
        self.context_length = context_length
        self.sampling_defaults = sampling_defaults or {}
        self._cache = None

    @classmethod
    def load(cls, name: str, folder: Path, adapter: Path | None = None, precision: str | None = None,
             rope_scaling: RopeScaling | None = None, num_ctx: int | None = None,
             progress: Progress | None = None, device=None) -> "Engine":
        """`precision` None: the model's default one (precision.default_precision), or fp32 for a model
        that only transformers runs. `rope_scaling` stretches the context to factor × the trained
        length (a `dynamic` base is computed for `num_ctx`). Before any weight is read, the KV
        cache for `num_ctx` (None: the whole context) is stated through `progress` and refused
        with its numbers if it does not fit in the memory available (the GPU's, on one).
        `device`: a name or torch.device for devices.resolve_device (None: the default in
        force: --device, $PML_DEVICE, auto); off the CPU the precision is
        placement.precision_on's."""
        device = resolve_device(device)
        config = read_config(folder)
        trained = int(config.get("max_position_embeddings", 2048))
        context_length = rope_scaling.context_length(trained) if rope_scaling else trained
        if num_ctx is not None and num_ctx > context_length:
            raise InvalidInputError(f"num_ctx {num_ctx} exceeds {context_limit(name, trained, rope_scaling)}")
        if rope_scaling is not None:
            try:
                config = scaled_config(config, rope_scaling.model_dump(), num_ctx)
            except ValueError as exc:
                raise InvalidInputError(f"{name}: {exc}; rope_scaling applies to models with plain ones") from None
        kv_cache = kv_cache_size(config, num_ctx or context_length)
        (progress or no_progress)(kv_cache.describe(), 0, None)
        if num_ctx is not None:
            check_kv_fits(kv_cache, device_memory(device))
        tokenizer = Tokenizer(folder)
        backend = load_backend(folder, precision, adapter, config if rope_scaling else None, device)
        if adapter is not None:
            name = f"{name}+{adapter.name}"
        return cls(name, folder, backend, tokenizer, context_length, sampling_defaults(folder), kv_cache)

    def chat_format(self, template: str | None = None) -> ChatFormat:
        return ChatFormat(self.tokenizer, template, model_name=self.name)

    def checked_window(self, prompt_ids: list[int], num_ctx: int | None, reply: bool = True) -> int:
        """The context window `prompt_ids` are run in (None: the model's whole context),
        refused when the prompt does not fit — with room for a reply when `reply`."""
        num_ctx = num_ctx or self.context_length
        if num_ctx > self.context_length:
            raise ContextOverflowError(f"num_ctx {num_ctx} exceeds {self.name}'s context length {self.context_length}")
        if not prompt_ids:
            raise ContextOverflowError("the prompt is empty")
        if len(prompt_ids) > (num_ctx - 1 if reply else num_ctx):
            raise ContextOverflowError(f"the prompt has {len(prompt_ids)} tokens; num_ctx is {num_ctx}")
        return num_ctx

    def generate(self, prompt_ids: list[int], params: GenerationParams, num_ctx: int | None = None) -> Generation:
        num_ctx = self.checked_window(prompt_ids, num_ctx)
        return Generation(lambda finish: self._steps(finish, list(prompt_ids), params, num_ctx))

    def next_token_logprobs(self, prompt_ids: list[int], num_ctx: int | None = None) -> torch.Tensor:
        """Log-probabilities ([vocab], float32) of the token that follows `prompt_ids`:
        one prefill, reusing the prefix the cache shares with the last prompt."""
        num_ctx = self.checked_window(prompt_ids, num_ctx, reply=False)
        logits, _ = prefill(self.backend, self._cache_for(num_ctx), list(prompt_ids))
        return torch.log_softmax(logits.reshape(-1).float(), dim=-1)

    def prompt_logprobs(self, prompt_ids: list[int], top_n: int = 0,
                        num_ctx: int | None = None) -> list[TokenLogprob | None]:
        """Each prompt token's log-prob given the tokens before it, with the `top_n`
        likeliest there (the first token has none: None). One pass over the prompt with
        every position's logits, in a cache of its own: the kept cache is left as it was."""
        self.checked_window(prompt_ids, num_ctx, reply=False)
        cache = self.backend.new_cache(len(prompt_ids))
        rows = []
        for start in range(0, len(prompt_ids), PREFILL_CHUNK):
            chunk = prompt_ids[start : start + PREFILL_CHUNK]
            rows.append(self.backend.forward(chunk, cache, start, all_logits=True).reshape(len(chunk), -1))
        return prompt_logprobs(torch.cat(rows), list(prompt_ids), top_n)

    def _cache_for(self, num_ctx: int):
        if self._cache is None or self._cache.max_len != num_ctx:
            self._cache = self.backend.new_cache(num_ctx)
        return self._cache

    def _steps(self, finish: Callable[[Completion], None], prompt: list[int], params: GenerationParams,
               num_ctx: int) -> Iterator[str]:
        sequence = Sequence(self.tokenizer, prompt, params, num_ctx)
        cache = self._cache_for(num_ctx)
        try:
            logits, cached = prefill(self.backend, cache, prompt)
            sequence.prefilled(cached)
            while True:
                delta = sequence.accept(logits)
                if worth_sending(delta):
                    yield delta
                if sequence.done:
                    break
                logits = self.backend.forward([sequence.token], cache, sequence.position)
                cache.ids.append(sequence.token)
        finally:
            finish(sequence.completion())
