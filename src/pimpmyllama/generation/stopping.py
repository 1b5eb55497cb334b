"""From token ids to streamed text, stopping at user stop strings.

Text is released only when it is final: not ending in half a UTF-8 character,
and not possibly the beginning of a stop string (which is then held back until
the next tokens tell).
"""


class TextStream:
    def __init__(self, tokenizer, stop: list[str] | tuple[str, ...] = ()):
        self._tokenizer = tokenizer
        self._stop = [s for s in stop if s]
        self._ids: list[int] = []
        self.text = ""  # what has been released so far
        self.stopped = False
        self.token_ends: list[int] = []  # per token pushed: where its text ends in the decoded reply

    def push(self, token_id: int) -> str:
        """Add a token; return the text it releases (possibly empty)."""
        self._ids.append(token_id)
        full = self._tokenizer.decode(self._ids)
        self.token_ends.append(len(full.rstrip("\ufffd")))  # half a character is not text yet
        if full.endswith("\ufffd"):  # an incomplete multi-byte character: wait
            return ""
        return self._release(full, final=False)

    def finish(self) -> str:
        """Release what was held back, once no more tokens will come."""
        if self.stopped:
            return ""
        return self._release(self._tokenizer.decode(self._ids), final=True)

    def _release(self, full: str, final: bool) -> str:
        cut = self._find_stop(full)
        if cut is not None:
            self.stopped = True
            full = full[:cut]
        elif not final:
            full = full[: len(full) - self._held_back(full)]
        if len(full) <= len(self.text):
            return ""
        delta = full[len(self.text) :]
        self.text = full
        return delta

    def _find_stop(self, full: str) -> int | None:
        if not self._stop:
            return None
        # Only the part not yet released can hold a new stop string.
        start = max(0, len(self.text) - max(len(s) for s in self._stop) + 1)
        hits = [i for i in (full.find(s, start) for s in self._stop) if i >= 0]
        return min(hits) if hits else None

    def _held_back(self, full: str) -> int:
        """Length of the longest suffix of `full` that begins some stop string."""
        longest = 0
        for stop in self._stop:
            for n in range(min(len(stop) - 1, len(full)), longest, -1):
                if full.endswith(stop[:n]):
                    longest = n
                    break
        return longest
