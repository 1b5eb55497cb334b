"""A streamed body that ends its generation when the client goes away.

Starlette pulls a plain iterator from its thread pool and, when the client
disconnects, simply stops pulling: the generator would stay suspended (holding its
engine) until garbage-collected. Here it is closed at once, so the reply ends as
interrupted (stored so, in a session) and the engine is free for the next request."""

from collections.abc import AsyncIterator, Iterator

import anyio
from starlette.concurrency import iterate_in_threadpool


async def closed_on_disconnect(iterator: Iterator[str]) -> AsyncIterator[str]:
    try:
        async for item in iterate_in_threadpool(iterator):
            yield item
    finally:
        # Shielded: this runs while the response is being cancelled.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(iterator.close)
