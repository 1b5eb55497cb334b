"""Work that may run torch runs in a thread of its own, gone when the work is."""

import asyncio
import threading

import pytest

from pimpmyllama.serving.threads import in_own_thread


def test_work_runs_in_a_thread_that_ends_with_it():
    seen = []

    def work(x):
        seen.append(threading.current_thread())
        return x * 2

    assert asyncio.run(in_own_thread(work, 21)) == 42
    (thread,) = seen
    assert thread is not threading.main_thread()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_its_exception_reaches_the_caller():
    def fail():
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        asyncio.run(in_own_thread(fail))
