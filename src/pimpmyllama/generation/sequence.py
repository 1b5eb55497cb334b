"""One reply being decoded, whoever drives the model: the engine's own loop (one
sequence at a time) or the batcher (many, advanced together, batching.py).

A `Sequence` owns what is private to one reply — its sampler, its text stream and
stop strings, its token budget, its usage — and `accept(logits)` takes the model's
logits for its next position, picks the token and says what text that released.
The caller runs the model; the sequence never does.
"""

import time
from bisect import bisect_left, bisect_right
from collections.abc import Iterator

import torch

from pimpmyllama.generation.constraints import mask_logits
from pimpmyllama.generation.logprobs import Piece, TokenLogprob, token_logprob
from pimpmyllama.generation.params import Completion, GenerationParams, Usage
from pimpmyllama.generation.sampling import Sampler
from pimpmyllama.generation.stopping import TextStream

PREFILL_CHUNK = 512  # long prompts are computed in chunks: bounded activation memory


def shared_prefix(cached: list[int], prompt: list[int]) -> int:
    """How many leading tokens of `prompt` a cache holding `cached` can reuse; the
    prompt's last token is always computed again, for its logits."""
    shared = 0
    for a, b in zip(cached, prompt[:-1]):
        if a != b:
            break
        shared += 1
    return shared


def prefill_chunks(backend, cache, prompt: list[int], start: int) -> Iterator[torch.Tensor]:
    """Run `prompt` from position `start` into `cache` (which holds its first `start`
    tokens), one chunk per iteration: each yields its chunk's last logits [vocab], the
    last one those of the token after the prompt."""
    cache.ids = cache.ids[:start]
    for begin in range(start, len(prompt), PREFILL_CHUNK):
        chunk = prompt[begin : begin + PREFILL_CHUNK]
        logits = backend.forward(chunk, cache, begin)
        cache.ids = prompt[: begin + len(chunk)]
        yield logits


def prefill(backend, cache, prompt: list[int]) -> tuple[torch.Tensor, int]:
    """Run `prompt` into `cache`, reusing the prefix it already holds: (the logits of
    the token after the prompt [vocab], the number of prompt tokens reused)."""
    shared = shared_prefix(cache.ids, prompt)
    *_, logits = prefill_chunks(backend, cache, prompt, shared)
    return logits, shared


class Sequence:
    """The state of one reply. `accept` is called once per model step with the
    logits for the position after the last token; when `done`, `completion()` is
    the reply. `token` is the last token picked: the one the model must read next."""

    def __init__(self, tokenizer, prompt: list[int], params: GenerationParams, num_ctx: int):
        self.prompt = list(prompt)
        self.params = params
        self.num_ctx = num_ctx
        self.usage = Usage(prompt_tokens=len(prompt))
        self.reply: list[int] = []
        self.reason = "interrupted"  # until it ends by itself
        self.done = False
        self.token: int | None = None
        self._stream = TextStream(tokenizer, params.stop)
        self._sampler = Sampler(params.sampling)
        self._end_ids = frozenset() if params.ignore_end_tokens else tokenizer.end_token_ids
        self._constraint = params.grammar.start(tokenizer) if params.grammar is not None else None
        self._logprobs: list[TokenLogprob] | None = [] if params.logprobs is not None else None
        self._logprobs_sent = 0
        self._started = time.perf_counter()
        self._first_token_at: float | None = None

    @property
    def position(self) -> int:
        """The position of `token` in the sequence: where the next step writes."""
        return len(self.prompt) + len(self.reply) - 1

    @property
    def text(self) -> str:
        return self._stream.text

    def prefilled(self, cached_tokens: int) -> None:
        """The prompt is in the cache (`cached_tokens` of it reused): its logits come next."""
        self.usage.cached_tokens = cached_tokens
        self.usage.prefill_seconds = time.perf_counter() - self._started

    def accept(self, logits: torch.Tensor) -> str:
        """Pick the next token from `logits` [vocab]; the text it releases (possibly
        empty). Afterwards `done` says whether the reply has ended, and then the text
        held back for stop strings has been released too. With logprobs asked for, the
        text is a `Piece` carrying the entries of the tokens it releases."""
        if self._first_token_at is None:
            self._first_token_at = time.perf_counter()
        else:
            self.usage.decode_steps += 1
            self.usage.decode_seconds = time.perf_counter() - self._first_token_at
        allowed = logits if self._constraint is None else mask_logits(logits, self._constraint.allowed())
        token = self._sampler(allowed, self.reply)
        if token in self._end_ids:
            return self._released(self._end("stop"))
        if self._logprobs is not None:
            self._logprobs.append(token_logprob(logits, token, self.params.logprobs))
        if self._constraint is not None:
            self._constraint.advance(token)
        self.token = token
        self.reply.append(token)
        self.usage.completion_tokens += 1
        delta = self._stream.push(token)
        if self._stream.stopped or (self._constraint is not None and self._constraint.finished):
            return self._released(delta + self._end("stop"))
        if self.usage.completion_tokens >= self.params.max_new_tokens or len(self.prompt) + len(self.reply) >= self.num_ctx:
            return self._released(delta + self._end("length"))
        if self.expired():
            return self._released(delta + self._end("timeout"))
        return self._released(delta)

    def expired(self) -> bool:
        return self.params.deadline is not None and time.monotonic() >= self.params.deadline

    def _end(self, reason: str) -> str:
        self.done, self.reason = True, reason
        return self._stream.finish()

    def _shown_logprobs(self) -> int:
        """How many tokens' entries the text released so far shows: those whose text
        it holds whole, and once the reply is done, those it holds any of (a token cut
        by a stop string); a stop string's own tokens are never shown."""
        ends, shown = self._stream.token_ends, len(self._stream.text)
        whole = bisect_right(ends, shown)
        if not self.done or self.reason == "interrupted":  # held-back text may never be shown
            return whole
        starts = [0, *ends[:-1]]  # each token's text starts where the one before ended
        return max(whole, bisect_left(starts, shown))

    def _released(self, delta: str) -> str:
        if self._logprobs is None:
            return delta
        shown = self._shown_logprobs()
        entries = self._logprobs[self._logprobs_sent : shown]
        self._logprobs_sent = max(self._logprobs_sent, shown)
        return Piece(delta, tuple(entries))

    def stop(self, reason: str = "interrupted") -> None:
        """End it from outside: the consumer went away ("interrupted"), or its deadline
        passed before it began ("timeout")."""
        self.done, self.reason = True, reason

    def completion(self) -> Completion:
        logprobs = None if self._logprobs is None else self._logprobs[: self._shown_logprobs()]
        return Completion(self._stream.text, self.reason, self.usage, list(self.reply), logprobs)
