"""Append-only JSONL caches in the output folder: `results.jsonl` (one line per
variant fingerprint × question × seed) and `perplexity.jsonl`.

Each line is appended, flushed and fsynced as soon as its answer exists, so a run
killed at any moment (kill -9 included) loses at most the answer in flight. On
load, a partial last line (killed mid-write) is dropped and cut from the file
before the next append; when a key appears twice, the first line wins.
"""

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from pimpmyllama.atomic import write_text_atomic


class JsonlCache:
    def __init__(self, path: Path, key: Callable[[dict], tuple]):
        self.path = path
        self.key = key
        self.lines: dict[tuple, dict] = {}
        self._valid_bytes = 0
        self._checked_tail = False
        self._load()

    def _load(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1  # whatever follows the last newline was cut mid-write
        self._valid_bytes = end
        for raw in data[:end].splitlines():
            try:
                line = json.loads(raw)
                key = self.key(line)
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
                continue  # not one of ours; never fatal, the answer is simply asked again
            self.lines.setdefault(key, line)

    def __contains__(self, key: tuple) -> bool:
        return key in self.lines

    def get(self, key: tuple) -> dict | None:
        return self.lines.get(key)

    def append(self, line: dict) -> None:
        key = self.key(line)
        if key in self.lines:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as f:
            if not self._checked_tail:
                if f.seek(0, os.SEEK_END) > self._valid_bytes:
                    f.truncate(self._valid_bytes)  # the partial line of a killed run
                self._checked_tail = True
            f.write(json.dumps(line, ensure_ascii=False).encode("utf-8") + b"\n")
            f.flush()
            os.fsync(f.fileno())
        self.lines[key] = line

    def rewrite(self, lines: Iterable[dict]) -> None:
        """Replace the file, atomically, by `lines` (the current comparison's, in order)."""
        kept = list(lines)
        write_text_atomic(self.path, "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in kept))
        self.lines = {}
        for line in kept:
            self.lines.setdefault(self.key(line), line)
        self._valid_bytes = self.path.stat().st_size
        self._checked_tail = True
