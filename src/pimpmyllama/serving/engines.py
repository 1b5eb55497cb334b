"""The server's engines: one per model (model, adapter, precision), loaded on first
use and kept; one generation at a time on each, so concurrent requests queue."""

import threading
from dataclasses import dataclass, field

from pimpmyllama.chat.opening import load_build_engine
from pimpmyllama.prompting.build import Build


@dataclass
class Loaded:
    engine: object
    lock: threading.Lock = field(default_factory=threading.Lock)  # held while the engine generates


class EnginePool:
    def __init__(self):
        self._loaded: dict[tuple, Loaded] = {}
        self._loading = threading.Lock()  # two first requests for one model load it once

    def get(self, build: Build) -> Loaded:
        key = (build.from_, build.adapter, build.precision)
        with self._loading:
            if key not in self._loaded:
                self._loaded[key] = Loaded(load_build_engine(build))
            return self._loaded[key]
