"""Continuous batching on the tiny model: a batched step gives each row the logits it
would get alone, a batch of replies equals the same replies decoded one by one, and
the queue, cancellation, cache reuse and errors behave as the batcher promises."""

import asyncio
import threading

import pytest
import torch

from pimpmyllama.errors import BusyError
from pimpmyllama.generation.batching import Batcher
from pimpmyllama.generation.engine import Engine, GenerationParams
from pimpmyllama.generation.sampling import SamplingParams

GREEDY = SamplingParams(temperature=0, repeat_penalty=1.0)


@pytest.fixture(scope="module", params=["int8", "int4"])
def engine(request, tiny_model):
    return Engine.load("tiny", tiny_model, precision=request.param)


@pytest.fixture
def batcher(engine):
    batcher = Batcher(engine, max_batch=4, max_queue=3)
    yield batcher
    batcher.close()


def prompts(engine, n: int) -> list[list[int]]:
    return [engine.chat_format().encode([{"role": "user", "content": f"question number {i} " * (1 + i % 3)}])
            for i in range(n)]


def run_all(generations) -> list:
    """Consume the generations from threads of their own, as concurrent clients do."""
    done = [None] * len(generations)

    def consume(i):
        done[i] = generations[i].run()

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(len(generations))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return done


def test_a_batched_step_gives_each_row_its_own_logits_exactly(engine):
    model = engine.backend
    model.trace_after = 0
    caches, positions, tokens, alone = [], [], [], []
    for n, ids in enumerate(prompts(engine, 3)):
        single, batched = model.new_cache(128), model.new_cache(128)
        model.forward(ids, single, 0)
        model.forward(ids, batched, 0)
        token = 10 + n
        alone.append(model.forward([token], single, len(ids)))  # the traced single-token step
        caches.append(batched)
        positions.append(len(ids))
        tokens.append(token)
    rows = model.forward_batch(tokens, caches, positions)
    assert rows.shape == (3, engine.tokenizer.vocab_size)
    for row, expected in zip(rows, alone):
        assert torch.equal(row, expected)


def test_a_short_prompt_gives_exactly_what_decoding_it_token_by_token_gives(engine):
    model = engine.backend
    if not model.fused:
        pytest.skip("our kernels are not built on this machine")
    ids = prompts(engine, 3)[2]
    whole, by_token, chunked = model.new_cache(128), model.new_cache(128), model.new_cache(128)
    logits = model.forward(ids, whole, 0)
    one_by_one = [model.forward([token], by_token, pos) for pos, token in enumerate(ids)]
    model.forward(ids[:7], chunked, 0)
    last = model.forward(ids[7:], chunked, 7)
    if engine.backend.layers[0].qkv.product.bits == 4:  # int4: the same kernels, row by row
        assert torch.equal(whole.k[:, :, : len(ids)], by_token.k[:, :, : len(ids)])
        assert torch.equal(logits, one_by_one[-1])
    # however the prompt is cut, the cache and the next token's logits are the same
    assert torch.equal(whole.k[:, :, : len(ids)], chunked.k[:, :, : len(ids)])
    assert torch.equal(logits, last)


def test_a_prompt_riding_a_batched_step_gets_what_forward_gives_it(engine):
    model = engine.backend
    assert model.prompt_rows_batch == (model.fused and model.layers[0].qkv.product.bits == 4)
    if not model.prompt_rows_batch:
        pytest.skip("only int4 layers on our kernels take a prompt row by row")
    first, second, prompt = prompts(engine, 3)
    caches, alone = [], []
    for n, ids in enumerate((first, second)):
        single, batched = model.new_cache(128), model.new_cache(128)
        model.forward(ids, single, 0)
        model.forward(ids, batched, 0)
        alone.append(model.forward([10 + n], single, len(ids)))
        caches.append(batched)
    by_itself, riding = model.new_cache(128), model.new_cache(128)
    expected = model.forward(prompt, by_itself, 0)
    rows = model.forward_batch([10, 11, *prompt], [*caches, *[riding] * len(prompt)],
                               [len(first), len(second), *range(len(prompt))], [0, 1, 1 + len(prompt)])
    assert rows.shape == (3, engine.tokenizer.vocab_size)
    assert torch.equal(rows[0], alone[0]) and torch.equal(rows[1], alone[1])
    assert torch.equal(rows[2], expected)
    assert torch.equal(riding.k[:, :, : len(prompt)], by_itself.k[:, :, : len(prompt)])


def test_replies_decoded_together_equal_the_same_replies_alone(engine):
    params = GenerationParams(max_new_tokens=12, sampling=GREEDY)
    asked = prompts(engine, 6)
    alone = [engine.generate(ids, params, 128).run() for ids in asked]
    batcher = Batcher(engine, max_batch=4, max_queue=8)
    try:
        together = run_all([batcher.generate(ids, params, 128) for ids in asked])
        stats = batcher.stats
    finally:
        batcher.close()
    assert [c.tokens for c in together] == [c.tokens for c in alone]
    assert [c.text for c in together] == [c.text for c in alone]
    assert sum(c.usage.completion_tokens for c in together) == stats.completion_tokens
    assert stats.rows > stats.steps  # several sequences per step: it batched
    assert stats.prompt_tokens + stats.cached_tokens == sum(len(ids) for ids in asked)
    # int4 on our kernels: the prompts that came while others decoded rode along their steps
    assert (stats.prompt_tokens_in_steps > 0) == engine.backend.prompt_rows_batch
    assert stats.running == 0 and stats.waiting == 0


def test_beyond_the_queue_a_request_is_refused(batcher, engine):
    # max_batch 4 + max_queue 3: the thread takes up to 4, 3 more may wait; hold the
    # thread out of the way by taking its lock while submitting
    params = GenerationParams(max_new_tokens=50, sampling=GREEDY, ignore_end_tokens=True)
    ids = prompts(engine, 1)[0]
    with batcher._wake:  # nothing is admitted while we hold it
        held = [batcher.generate(ids, params, 128) for _ in range(3)]
        with pytest.raises(BusyError, match="3 requests are already waiting"):
            batcher.generate(ids, params, 128)
    for generation in held:
        generation.close()


def test_a_consumer_that_goes_away_stops_its_sequence(batcher, engine):
    params = GenerationParams(max_new_tokens=100, sampling=GREEDY, ignore_end_tokens=True)
    generation = batcher.generate(prompts(engine, 1)[0], params, 256)
    pieces = iter(generation)
    next(pieces)
    generation.close()
    assert generation.completion.finish_reason == "interrupted"
    # the batcher drops it before its next step
    other = batcher.generate(prompts(engine, 1)[0], GenerationParams(max_new_tokens=3, sampling=GREEDY), 256).run()
    assert other.finish_reason in ("length", "stop")
    assert batcher.stats.finished.get("interrupted") == 1
    assert batcher.stats.completion_tokens < 100 + 3  # it did not run to its 100 tokens


def test_an_async_consumer_gets_the_same_reply_and_can_abandon_it(batcher, engine):
    params = GenerationParams(max_new_tokens=10, sampling=GREEDY)
    ids = prompts(engine, 2)[1]
    expected = engine.generate(ids, params, 128).run()

    async def consume():
        generation = batcher.generate(ids, params, 128)
        pieces = [piece async for piece in generation]
        return "".join(pieces), generation.completion

    text, completion = asyncio.run(consume())
    assert text == expected.text and completion.tokens == expected.tokens

    async def abandon():
        generation = batcher.generate(ids, GenerationParams(max_new_tokens=100, sampling=GREEDY,
                                                            ignore_end_tokens=True), 256)
        async for _ in generation:
            break
        await generation.__aiter__().aclose()  # what a cancelled stream does
        return generation

    abandoned = asyncio.run(abandon())
    assert abandoned.completion.finish_reason == "interrupted"
    batcher.generate(ids, params, 128).run()  # the batcher has taken at least one more turn
    assert batcher.stats.finished["interrupted"] == 1 and sum(batcher.stats.finished.values()) == 3
    assert batcher.stats.completion_tokens < 100


def test_a_following_prompt_reuses_a_finished_sequences_cache(batcher, engine):
    params = GenerationParams(max_new_tokens=6, sampling=GREEDY)
    ids = prompts(engine, 1)[0]
    first = batcher.generate(ids, params, 128).run()
    follow = ids + first.tokens + engine.tokenizer.encode(" and then?")
    second = batcher.generate(follow, params, 128).run()
    assert second.usage.cached_tokens >= len(ids)
    assert second.tokens == engine.generate(follow, params, 128).run().tokens


def test_a_failing_step_fails_its_requests_and_the_batcher_goes_on(batcher, engine, monkeypatch):
    params = GenerationParams(max_new_tokens=4, sampling=GREEDY)
    ids = prompts(engine, 1)[0]
    real = engine.backend.forward

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(engine.backend, "forward", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        batcher.generate(ids, params, 128).run()
    monkeypatch.setattr(engine.backend, "forward", real)
    assert batcher.generate(ids, params, 128).run().usage.completion_tokens >= 1


def test_work_on_the_engine_runs_in_the_decoding_thread_between_steps(batcher, engine):
    ids = prompts(engine, 1)[0]
    threads = []

    def score(used):
        threads.append(threading.current_thread().name)
        return used.next_token_logprobs(ids, 128)

    assert torch.equal(batcher.call(score), engine.next_token_logprobs(ids, 128))
    assert threads == ["batcher tiny"]
    with pytest.raises(ZeroDivisionError):
        batcher.call(lambda used: 1 / 0)
    assert batcher.generate(ids, GenerationParams(max_new_tokens=2, sampling=GREEDY), 128).run().usage.completion_tokens
