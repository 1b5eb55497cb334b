"""The channel from the decoding thread to its consumers: items in order, blocking or
awaited, and a batched step's wakes sent together (one per event loop)."""

import asyncio
import threading

from pimpmyllama.generation.outbox import Outbox, Wakeups


def test_a_blocking_consumer_gets_the_items_in_order():
    box = Outbox()
    got = []
    reader = threading.Thread(target=lambda: got.extend(box.get() for _ in range(3)))
    reader.start()
    for item in ("a", "b", "c"):
        box.put(item)
    reader.join(timeout=5)
    assert got == ["a", "b", "c"]


def test_held_wakes_reach_every_awaiting_consumer_in_one_call_per_loop():
    async def main():
        loop = asyncio.get_running_loop()
        calls = []
        original = loop.call_soon_threadsafe

        def counted(callback, *args):
            calls.append(callback)
            return original(callback, *args)

        loop.call_soon_threadsafe = counted
        boxes = [Outbox() for _ in range(3)]
        readers = [asyncio.create_task(box.aget()) for box in boxes]
        await asyncio.sleep(0.01)  # all three are waiting now
        wakeups = Wakeups()
        producer = threading.Thread(target=lambda: [box.put(f"token {i}", wakeups) for i, box in enumerate(boxes)])
        producer.start()
        producer.join()
        await asyncio.sleep(0.05)
        assert not any(r.done() for r in readers)  # held: nobody was woken yet
        assert calls == []
        threading.Thread(target=wakeups.send).start()
        assert await asyncio.wait_for(asyncio.gather(*readers), 5) == ["token 0", "token 1", "token 2"]
        assert len(calls) == 1

    asyncio.run(main())


def test_a_put_without_wakeups_wakes_its_consumer_at_once():
    async def main():
        box = Outbox()
        reader = asyncio.create_task(box.aget())
        await asyncio.sleep(0.01)
        threading.Thread(target=box.put, args=("now",)).start()
        assert await asyncio.wait_for(reader, 5) == "now"

    asyncio.run(main())
