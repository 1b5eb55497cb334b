"""Work that may run torch, each call in a thread of its own that ends with it.

A thread that has run a parallel torch operation keeps its OpenMP team for as long as
it lives. With more OpenMP threads alive than cores, libgomp stops spinning between
parallel regions and every region of the decoding thread then waits for its workers
to wake: decoding ran at half speed (152 → 76 tokens/s on the default model, 2 cores)
after a single matrix product in one of the server's pooled worker threads, for the
rest of the process. Loading a model, packing a prompt (which may embed it for a
knowledge base) and embedding therefore run here, not in the pool: the thread, and
its team, are gone when the work is.
"""

import asyncio
import threading


async def in_own_thread(work, *args):
    """`work(*args)` in a new thread; its result, or its exception. If the caller is
    cancelled, the work still finishes and its result is dropped."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def settle(result, error) -> None:
        if done.done():  # the caller was cancelled
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)

    def run() -> None:
        try:
            result, error = work(*args), None
        except BaseException as exc:  # handed to the caller, re-raised there
            result, error = None, exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the event loop has closed
            pass

    threading.Thread(target=run, name=f"pml {getattr(work, '__name__', 'work')}", daemon=True).start()
    return await done
