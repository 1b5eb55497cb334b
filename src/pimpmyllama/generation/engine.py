"""The engine: a loaded model that turns a prompt into a stream of text.

One KV cache is kept between calls; a prompt that starts with the tokens of the
previous call (the usual case in a chat, where the history grows at the end)
only computes its new tokens.
"""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from pimpmyllama.errors import ContextOverflowError
from pimpmyllama.generation.loading import load_backend
from pimpmyllama.generation.sampling import Sampler, SamplingParams
from pimpmyllama.generation.stopping import TextStream
from pimpmyllama.models.info import read_config
from pimpmyllama.prompting.format import ChatFormat
from pimpmyllama.prompting.tokenizer import Tokenizer

PREFILL_CHUNK = 512  # long prompts are computed in chunks: bounded activation memory


@dataclass(frozen=True)
class GenerationParams:
    max_new_tokens: int = 512
    sampling: SamplingParams = field(default_factory=SamplingParams)
    stop: tuple[str, ...] = ()
    ignore_end_tokens: bool = False  # for benchmarks: always generate max_new_tokens


@dataclass
class Usage:
    prompt_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens whose keys/values were reused
    completion_tokens: int = 0
    prefill_seconds: float = 0.0  # time to first token
    decode_steps: int = 0  # single-token forward passes after the prompt's
    decode_seconds: float = 0.0  # wall time from the first token to the last step

    @property
    def tokens_per_second(self) -> float:
        return self.decode_steps / self.decode_seconds if self.decode_seconds > 0 else 0.0

    def as_dict(self) -> dict:
        return {
            "prompt_tokens": self.prompt_tokens,
            "cached_tokens": self.cached_tokens,
            "completion_tokens": self.completion_tokens,
            "time_to_first_token_s": round(self.prefill_seconds, 4),
            "decode_s": round(self.decode_seconds, 4),
            "tokens_per_second": round(self.tokens_per_second, 2),
        }


@dataclass
class Completion:
    text: str
    finish_reason: str  # "stop" (end token or stop string), "length", or "interrupted"
    usage: Usage
    tokens: list[int] = field(default_factory=list)  # the reply's token ids


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
                 sampling_defaults: dict | None = None):
        self.name = name
        self.folder = folder
        self.backend = backend
        self.tokenizer = tokenizer
        self.context_length = context_length
        self.sampling_defaults = sampling_defaults or {}
        self._cache = None

    @classmethod
    def load(cls, name: str, folder: Path, adapter: Path | None = None, precision: str | None = None) -> "Engine":
        """`precision` None: the model's default one (precision.default_precision), or fp32 for a model
        that only transformers runs."""
        config = read_config(folder)
        tokenizer = Tokenizer(folder)
        backend = load_backend(folder, precision, adapter)
        if adapter is not None:
            name = f"{name}+{adapter.name}"
        return cls(name, folder, backend, tokenizer, int(config.get("max_position_embeddings", 2048)),
                   sampling_defaults(folder))

    def chat_format(self, template: str | None = None) -> ChatFormat:
        return ChatFormat(self.tokenizer, template, model_name=self.name)

    def generate(self, prompt_ids: list[int], params: GenerationParams, num_ctx: int | None = None) -> Generation:
        num_ctx = num_ctx or self.context_length
        if num_ctx > self.context_length:
            raise ContextOverflowError(f"num_ctx {num_ctx} exceeds {self.name}'s context length {self.context_length}")
        if not prompt_ids:
            raise ContextOverflowError("the prompt is empty")
        if len(prompt_ids) >= num_ctx:
            raise ContextOverflowError(f"the prompt has {len(prompt_ids)} tokens; num_ctx is {num_ctx}")
        return Generation(lambda finish: self._steps(finish, list(prompt_ids), params, num_ctx))

    def next_token_logprobs(self, prompt_ids: list[int], num_ctx: int | None = None) -> torch.Tensor:
        """Log-probabilities ([vocab], float32) of the token that follows `prompt_ids`:
        one prefill, reusing the prefix the cache shares with the last prompt."""
        num_ctx = num_ctx or self.context_length
        if not prompt_ids:
            raise ContextOverflowError("the prompt is empty")
        if len(prompt_ids) > num_ctx:
            raise ContextOverflowError(f"the prompt has {len(prompt_ids)} tokens; num_ctx is {num_ctx}")
        logits, _ = self._prefill(self._cache_for(num_ctx), list(prompt_ids))
        return torch.log_softmax(logits.reshape(-1).float(), dim=-1)

    def _cache_for(self, num_ctx: int):
        if self._cache is None or self._cache.max_len != num_ctx:
            self._cache = self.backend.new_cache(num_ctx)
        return self._cache

    def _prefill(self, cache, prompt: list[int]):
        # Reuse the longest prefix shared with what the cache holds; at least the
        # last prompt token is computed, for its logits.
        shared = 0
        for a, b in zip(cache.ids, prompt[:-1]):
            if a != b:
                break
            shared += 1
        cache.ids = cache.ids[:shared]
        logits = None
        for start in range(shared, len(prompt), PREFILL_CHUNK):
            chunk = prompt[start : start + PREFILL_CHUNK]
            logits = self.backend.forward(chunk, cache, start)
            cache.ids = prompt[: start + len(chunk)]
        return logits, shared

    def _steps(self, finish: Callable[[Completion], None], prompt: list[int], params: GenerationParams,
               num_ctx: int) -> Iterator[str]:
        usage = Usage(prompt_tokens=len(prompt))
        stream = TextStream(self.tokenizer, params.stop)
        sampler = Sampler(params.sampling)
        end_ids = frozenset() if params.ignore_end_tokens else self.tokenizer.end_token_ids
        cache = self._cache_for(num_ctx)
        context = list(prompt)
        reply: list[int] = []
        reason = "interrupted"
        started = time.perf_counter()
        try:
            logits, usage.cached_tokens = self._prefill(cache, prompt)
            usage.prefill_seconds = time.perf_counter() - started
            while True:
                token = sampler(logits, reply)
                if token in end_ids:
                    reason = "stop"
                    break
                usage.completion_tokens += 1
                context.append(token)
                reply.append(token)
                delta = stream.push(token)
                if delta:
                    yield delta
                if stream.stopped:
                    reason = "stop"
                    break
                if usage.completion_tokens >= params.max_new_tokens or len(context) >= num_ctx:
                    reason = "length"
                    break
                logits = self.backend.forward([token], cache, len(context) - 1)
                cache.ids.append(token)
                usage.decode_steps += 1
                usage.decode_seconds = time.perf_counter() - started - usage.prefill_seconds
            tail = stream.finish()
            if tail:
                yield tail
        finally:
            finish(Completion(stream.text, reason, usage, reply))
