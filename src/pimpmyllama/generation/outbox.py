"""A one-way channel from the decoding thread to one consumer, who reads it either
blocking (a plain thread) or awaiting (an asyncio task): the same items in the same
order either way. `put` never blocks the decoding thread."""

import asyncio
import threading
from collections import deque


class Outbox:
    def __init__(self):
        self._items: deque = deque()
        self._ready = threading.Condition()
        self._wake = None  # set while an asyncio consumer waits: wakes it from the producer's thread

    def put(self, item) -> None:
        with self._ready:
            self._items.append(item)
            self._ready.notify()
            wake = self._wake
        if wake is not None:
            try:
                wake()
            except RuntimeError:  # the consumer's event loop has closed: nobody is listening
                pass

    def get(self):
        """The next item, waiting for it."""
        with self._ready:
            while not self._items:
                self._ready.wait()
            return self._items.popleft()

    async def aget(self):
        """The next item, awaiting it (the event loop stays free meanwhile)."""
        loop = asyncio.get_running_loop()
        while True:
            event = asyncio.Event()
            with self._ready:
                if self._items:
                    self._wake = None
                    return self._items.popleft()
                self._wake = lambda: loop.call_soon_threadsafe(event.set)
            await event.wait()
