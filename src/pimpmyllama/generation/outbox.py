"""A one-way channel from the decoding thread to one consumer, who reads it either
blocking (a plain thread) or awaiting (an asyncio task): the same items in the same
order either way. `put` never blocks the decoding thread.

Waking an asyncio consumer from another thread is a write to its event loop's
self-pipe (a system call, and a wake-up of the loop's thread). A batched step gives
a token to every running sequence at once, so its puts can hold their wakes in a
`Wakeups` and send them together: one per event loop, not one per sequence.
"""

import asyncio
import threading
from collections import deque


def _set_all(events: list[asyncio.Event]) -> None:
    for event in events:
        event.set()


class Wakeups:
    """Wakes of asyncio consumers held back, then sent with one call per event loop."""

    def __init__(self):
        self._by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Event]] = {}

    def add(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
        self._by_loop.setdefault(loop, []).append(event)

    def send(self) -> None:
        for loop, events in self._by_loop.items():
            _wake(loop, _set_all, events)
        self._by_loop.clear()


def _wake(loop: asyncio.AbstractEventLoop, callback, *args) -> None:
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:  # the consumer's event loop has closed: nobody is listening
        pass


class Outbox:
    def __init__(self):
        self._items: deque = deque()
        self._ready = threading.Condition()
        self._waiter = None  # (loop, event) while an asyncio consumer waits

    def put(self, item, wakeups: Wakeups | None = None) -> None:
        """Add `item`; an asyncio consumer waiting for it is woken now, or, given
        `wakeups`, when they are sent."""
        with self._ready:
            self._items.append(item)
            self._ready.notify()
            waiter, self._waiter = self._waiter, None
        if waiter is None:
            return
        loop, event = waiter
        if wakeups is not None:
            wakeups.add(loop, event)
        else:
            _wake(loop, event.set)

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
                    self._waiter = None
                    return self._items.popleft()
                self._waiter = (loop, event)
            await event.wait()
