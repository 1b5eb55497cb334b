"""Continuous batching: many replies decoded together on one engine.

A `Batcher` owns a thread that drives the model. Requests wait in a bounded queue;
between steps, waiting ones join the batch (up to `max_batch` running), each with a
KV cache of its own; every step advances all running sequences by one token in one
pass through the layers (`forward_batch`: each weight read once per step), and a
sequence leaves the batch as soon as it ends or its consumer goes away. A long
prompt is computed one chunk per step, so the others keep decoding meanwhile.

Every row of a batched step gets the logits it would get alone (llama.py
`forward_batch`), so a greedy reply does not depend on what else was running.

`Batcher.generate` has `Engine.generate`'s signature and returns a `Generation`, so
a `Conversation` runs on a batcher as on an engine; an asyncio consumer iterates
the generation with `async for` instead, and closing it (a client that went away)
takes its sequence out of the batch before the next step.
"""

import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

from pimpmyllama.errors import BusyError
from pimpmyllama.generation.engine import Engine, Generation
from pimpmyllama.generation.logprobs import worth_sending
from pimpmyllama.generation.outbox import Outbox, Wakeups
from pimpmyllama.generation.params import Completion, GenerationParams
from pimpmyllama.generation.products import SHORT_PROMPT_ROWS
from pimpmyllama.generation.sequence import Sequence, prefill_chunks, shared_prefix

RIDING_ROWS = 64  # prompt rows that ride along one decoding step: a long prompt rides several


@dataclass
class _Running:
    sequence: Sequence
    outbox: Outbox
    cache: object = None
    chunks: Iterator | None = None  # its prompt's prefill, one chunk per turn (sequence.prefill_chunks)
    reused: int = 0  # prompt tokens found in the cache it was given
    cancelled: bool = False


@dataclass
class _Failed:
    error: Exception


class QueuedGeneration(Generation):
    """A reply decoded by a batcher. Iterate it (blocking) or `async for` it; either
    way `completion` is set when it ends, and ending it early (`close`, `aclose`, or
    abandoning an `async for`) takes it out of the batch."""

    def __init__(self, running: _Running):
        self._running = running
        self._seen = ""  # what the consumer has received: the reply if it is cut short
        super().__init__(self._produce)

    def _take(self, item, finish: Callable[[Completion], None]) -> str | None:
        """A text piece to pass on, or None once the reply has ended (completion set)."""
        if isinstance(item, Completion):
            finish(item)
            return None
        if isinstance(item, BaseException):
            raise item
        self._seen += item
        return item

    def _cut_short(self, finish: Callable[[Completion], None]) -> None:
        if self.completion is None:
            self._running.cancelled = True
            usage = self._running.sequence.usage
            finish(Completion(self._seen, "interrupted", usage, list(self._running.sequence.reply)))

    def _produce(self, finish: Callable[[Completion], None]) -> Iterator[str]:
        try:
            while (piece := self._take(self._running.outbox.get(), finish)) is not None:
                yield piece
        finally:
            self._cut_short(finish)

    def close(self) -> None:
        super().close()
        self._cut_short(self._finish)

    async def __aiter__(self) -> AsyncIterator[str]:
        try:
            while (piece := self._take(await self._running.outbox.aget(), self._finish)) is not None:
                yield piece
        finally:
            self._cut_short(self._finish)


@dataclass
class BatchStats:
    """What the batcher has done so far (read by the server's /metrics)."""

    waiting: int = 0
    running: int = 0
    steps: int = 0  # batched decoding steps
    rows: int = 0  # sequences advanced, summed over steps (rows / steps: the mean batch)
    prompt_tokens: int = 0  # computed, not reused from a cache
    prompt_tokens_in_steps: int = 0  # of which computed in decoding steps, beside the sequences' new tokens
    cached_tokens: int = 0
    completion_tokens: int = 0
    finished: dict = field(default_factory=dict)  # finish reason -> count


class CachePool:
    """The KV caches of finished sequences, kept for the next ones: a new prompt gets
    the kept cache sharing its longest prefix (a chat's next turn resumes where the
    last reply ended), else a new one. At most `keep` are kept, the oldest dropped."""

    def __init__(self, backend, keep: int):
        self._backend, self._keep = backend, keep
        self._free: list = []

    def take(self, prompt: list[int], max_len: int):
        fitting = [c for c in self._free if c.max_len == max_len]
        if fitting:
            best = max(fitting, key=lambda c: shared_prefix(c.ids, prompt))
            self._free.remove(best)
            return best
        return self._backend.new_cache(max_len)

    def give(self, cache) -> None:
        self._free.append(cache)
        del self._free[: max(0, len(self._free) - self._keep)]


class Batcher:
    """Continuous batching over `engine`; `max_batch` sequences decode together and up
    to `max_queue` more wait (beyond that, `generate` raises BusyError)."""

    def __init__(self, engine: Engine, max_batch: int = 8, max_queue: int = 64):
        self.engine = engine
        self.max_batch, self.max_queue = max_batch, max_queue
        self.stats = BatchStats()
        self._waiting: deque[_Running] = deque()
        self._running: list[_Running] = []
        self._jobs: deque[tuple[Callable, Outbox]] = deque()
        self._wake = threading.Condition()
        self._closed = False
        self._caches = CachePool(engine.backend, keep=max_batch)
        self._batched = hasattr(engine.backend, "forward_batch")
        self._thread = threading.Thread(target=self._loop, name=f"batcher {engine.name}", daemon=True)
        self._thread.start()

    # what a Conversation reads from its engine
    @property
    def name(self) -> str:
        return self.engine.name

    @property
    def tokenizer(self):
        return self.engine.tokenizer

    @property
    def context_length(self) -> int:
        return self.engine.context_length

    @property
    def sampling_defaults(self) -> dict:
        return self.engine.sampling_defaults

    def chat_format(self, template: str | None = None):
        return self.engine.chat_format(template)

    def generate(self, prompt_ids: list[int], params: GenerationParams, num_ctx: int | None = None) -> QueuedGeneration:
        num_ctx = self.engine.checked_window(prompt_ids, num_ctx)
        running = _Running(Sequence(self.engine.tokenizer, prompt_ids, params, num_ctx), Outbox())
        with self._wake:
            if self._closed:
                raise BusyError(f"{self.name} is shutting down")
            if len(self._waiting) >= self.max_queue:
                raise BusyError(f"{self.max_queue} requests are already waiting for {self.name}; try again shortly")
            self._waiting.append(running)
            self.stats.waiting = len(self._waiting)
            self._wake.notify()
        return QueuedGeneration(running)

    def call(self, work: Callable[[Engine], object]):
        """`work(engine)` run by the decoding thread between two steps (the engine is
        not for two threads at once), e.g. scoring a prompt; its result, or its error."""
        outbox = Outbox()
        with self._wake:
            if self._closed:
                raise BusyError(f"{self.name} is shutting down")
            self._jobs.append((work, outbox))
            self._wake.notify()
        result = outbox.get()
        if isinstance(result, _Failed):
            raise result.error
        return result

    def close(self) -> None:
        """Stop the thread; replies still running end as interrupted."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join()

    # the decoding thread -------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._wake:
                while not (self._waiting or self._running or self._jobs or self._closed):
                    self._wake.wait()
                if self._closed:
                    break
                expired = [r for r in self._waiting if r.sequence.expired()]
                for running in expired:  # waited past their deadline: they end before they begin
                    self._waiting.remove(running)
                while self._waiting and len(self._running) < self.max_batch:
                    self._running.append(self._waiting.popleft())
                self.stats.waiting, self.stats.running = len(self._waiting), len(self._running)
                jobs, self._jobs = list(self._jobs), deque()
            for running in expired:
                running.sequence.stop("timeout")
                self._leave(running)
            for work, outbox in jobs:
                try:
                    outbox.put(work(self.engine))
                except Exception as exc:  # the caller's to handle
                    outbox.put(_Failed(exc))
            try:
                self._advance()
            except Exception as exc:  # a failing forward fails its batch, not the server
                for running in list(self._running):
                    running.outbox.put(exc)
                    self._leave(running)
        for _, outbox in self._jobs:
            outbox.put(_Failed(BusyError(f"{self.name} is shutting down")))
        for running in [*self._running, *self._waiting]:
            running.sequence.stop()
            running.outbox.put(running.sequence.completion())

    def _advance(self) -> None:
        """One turn: drop the abandoned, compute one prompt chunk, decode one step. A
        short prompt's chunk rides along the decoding step instead (the weights read
        once for both), where the model gives its rows the same numbers either way."""
        for running in [r for r in self._running if r.cancelled]:
            running.sequence.stop()
            self._leave(running)
        prefilling = [r for r in self._running if r.cache is None or len(r.cache.ids) < len(r.sequence.prompt)]
        decoding = [r for r in self._running if r.sequence.token is not None and not r.sequence.done]
        riding = None
        if prefilling:
            self._open(prefilling[0])
            if decoding and self._can_ride(prefilling[0]):
                riding = prefilling[0]
            else:
                self._prefill_chunk(prefilling[0])
                decoding = [r for r in self._running if r.sequence.token is not None and not r.sequence.done]
        if decoding or riding:
            self._step(decoding, riding)

    def _open(self, running: _Running) -> None:
        """Give a new sequence the kept cache sharing most of its prompt."""
        if running.cache is None:
            prompt = running.sequence.prompt
            running.cache = self._caches.take(prompt, running.sequence.num_ctx)
            running.reused = shared_prefix(running.cache.ids, prompt)
            running.cache.ids = running.cache.ids[: running.reused]
            self.stats.cached_tokens += running.reused

    def _can_ride(self, running: _Running) -> bool:
        left = len(running.sequence.prompt) - len(running.cache.ids)
        return (self._batched and running.chunks is None and left <= SHORT_PROMPT_ROWS
                and getattr(self.engine.backend, "prompt_rows_batch", False))

    def _prefill_chunk(self, running: _Running) -> None:
        prompt = running.sequence.prompt
        if running.chunks is None:
            running.chunks = prefill_chunks(self.engine.backend, running.cache, prompt, len(running.cache.ids))
        before = len(running.cache.ids)
        logits = next(running.chunks)
        self.stats.prompt_tokens += len(running.cache.ids) - before
        if len(running.cache.ids) == len(prompt):
            self._prefilled(running, logits)

    def _prefilled(self, running: _Running, logits, wakeups: Wakeups | None = None) -> None:
        running.sequence.prefilled(running.reused)
        self._deliver(running, logits, wakeups)

    def _step(self, decoding: list[_Running], riding: _Running | None = None) -> None:
        """One token for each decoding sequence, and with them up to RIDING_ROWS of
        `riding`'s prompt (its rows at their positions in its cache)."""
        tokens = [r.sequence.token for r in decoding]
        if riding is not None or (self._batched and len(decoding) > 1):
            caches = [r.cache for r in decoding]
            positions = [r.sequence.position for r in decoding]
            wanted = None
            if riding is not None:
                begin = len(riding.cache.ids)
                piece = riding.sequence.prompt[begin : begin + RIDING_ROWS]
                caches += [riding.cache] * len(piece)
                positions += range(begin, begin + len(piece))
                wanted = [*range(len(decoding)), len(decoding) + len(piece) - 1]
            logits = self.engine.backend.forward_batch(tokens + (piece if riding else []), caches, positions, wanted)
        else:
            logits = [self.engine.backend.forward([r.sequence.token], r.cache, r.sequence.position) for r in decoding]
        self.stats.steps += 1
        self.stats.rows += len(decoding)
        wakeups = Wakeups()  # the step's consumers woken together, once the step's tokens are all out
        for running, token, row in zip(decoding, tokens, logits):
            running.cache.ids.append(token)
            self._deliver(running, row, wakeups)
        if riding is not None:
            riding.cache.ids = riding.sequence.prompt[: begin + len(piece)]
            self.stats.prompt_tokens += len(piece)
            self.stats.prompt_tokens_in_steps += len(piece)
            if len(riding.cache.ids) == len(riding.sequence.prompt):
                self._prefilled(riding, logits[-1], wakeups)
        wakeups.send()

    def _deliver(self, running: _Running, logits, wakeups: Wakeups | None = None) -> None:
        delta = running.sequence.accept(logits)
        if worth_sending(delta):
            running.outbox.put(delta, wakeups)
        if running.sequence.done:
            self._leave(running, wakeups)

    def _leave(self, running: _Running, wakeups: Wakeups | None = None) -> None:
        """Out of the batch: its cache kept for reuse, its completion sent."""
        with self._wake:
            if running in self._running:
                self._running.remove(running)
            self.stats.running = len(self._running)
        if running.cache is not None:
            self._caches.give(running.cache)
            running.cache = None
        completion = running.sequence.completion()
        self.stats.completion_tokens += completion.usage.completion_tokens
        self.stats.finished[completion.finish_reason] = self.stats.finished.get(completion.finish_reason, 0) + 1
        running.outbox.put(completion, wakeups)

