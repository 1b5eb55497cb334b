"""The server's engines: one per model (model, adapter, precision, rope scaling), loaded on first
use (or at start, `preload`) and kept, each behind a continuous batcher
(generation/batching.py): concurrent requests to a model decode together, up to
`max_batch` at once, `max_queue` more wait, and beyond that a request is refused
(BusyError: the server's 503)."""

import threading

from pimpmyllama.chat.opening import load_build_engine
from pimpmyllama.generation.batching import Batcher
from pimpmyllama.prompting.build import Build


class EnginePool:
    def __init__(self, max_batch: int = 8, max_queue: int = 64):
        self.max_batch, self.max_queue = max_batch, max_queue
        self._loaded: dict[tuple, Batcher] = {}
        self._loading = threading.Lock()  # two first requests for one model load it once
        self._pending = 0  # loads in progress (for /health)

    def get(self, build: Build) -> Batcher:
        p = build.parameters
        scaling = p.rope_scaling.model_dump_json() if p.rope_scaling else None
        key = (build.from_, build.adapter, build.precision, scaling, p.num_ctx if scaling else None)
        with self._loading:
            if key not in self._loaded:
                self._pending += 1
                try:
                    self._loaded[key] = self._batched(load_build_engine(build))
                finally:
                    self._pending -= 1
            return self._loaded[key]

    def _batched(self, engine):
        if not hasattr(engine, "backend"):  # a stand-in with no model to drive (tests): as it is
            return engine
        return Batcher(engine, self.max_batch, self.max_queue)

    @property
    def loading(self) -> bool:
        return self._pending > 0 or self._loading.locked()

    def batchers(self) -> list[Batcher]:
        return list(self._loaded.values())

    def close(self) -> None:
        for batcher in self.batchers():
            if isinstance(batcher, Batcher):
                batcher.close()


def on_engine(served, work):
    """`work(engine)` where the engine may be used: in its batcher's thread, between
    two steps (the engine is not for two threads at once); a stand-in engine directly."""
    return served.call(work) if isinstance(served, Batcher) else work(served)
