"""The engine's decode loop on the tiny model."""

import pytest
import torch

from pimpmyllama.errors import ContextOverflowError
from pimpmyllama.generation.engine import Engine, GenerationParams
from pimpmyllama.generation.sampling import SamplingParams

GREEDY = SamplingParams(temperature=0, repeat_penalty=1.0)


@pytest.fixture(scope="module")
def engine(tiny_model):
    return Engine.load("tiny", tiny_model, precision="fp32")  # compared with transformers' fp32


def prompt(engine, text="hello world"):
    return engine.chat_format().encode([{"role": "user", "content": text}])


def test_greedy_tokens_equal_transformers_generate(engine, tiny_model):
    from transformers import AutoModelForCausalLM

    ids = prompt(engine)
    gen = engine.generate(ids, GenerationParams(max_new_tokens=12, sampling=GREEDY), 256)
    completion = gen.run()
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model))
    out = model.generate(torch.tensor([ids]), max_new_tokens=12, do_sample=False,
                         eos_token_id=sorted(engine.tokenizer.end_token_ids), pad_token_id=0)
    expected = out[0, len(ids):].tolist()
    ends = [i for i, t in enumerate(expected) if t in engine.tokenizer.end_token_ids]
    expected = expected[: ends[0]] if ends else expected
    assert completion.text == engine.tokenizer.decode(expected)
    assert completion.usage.completion_tokens == len(expected)
    assert completion.finish_reason == ("stop" if ends else "length")


def test_a_repeated_prompt_reuses_the_cache_and_gives_the_same_reply(engine):
    ids = prompt(engine, "the post office")
    params = GenerationParams(max_new_tokens=8, sampling=GREEDY)
    first = engine.generate(ids, params, 256).run()
    second = engine.generate(ids, params, 256).run()
    assert second.text == first.text
    assert second.usage.cached_tokens == len(ids) - 1
    longer = ids + prompt(engine, "and more")
    third = engine.generate(longer, params, 256).run()
    assert third.usage.cached_tokens == len(ids)  # the shared prefix, not more


def test_max_new_tokens_and_end_tokens_finish_the_reply(engine):
    ids = prompt(engine)
    c = engine.generate(ids, GenerationParams(max_new_tokens=3, sampling=GREEDY), 256).run()
    assert (c.finish_reason, c.usage.completion_tokens) in {("length", 3), ("stop", 0), ("stop", 1), ("stop", 2)}
    # Force the end token to be the likeliest: the reply stops before any text.
    end = min(engine.tokenizer.end_token_ids)
    original = engine.backend.forward

    def prefer_end(ids_, cache, pos0, all_logits=False):
        logits = original(ids_, cache, pos0, all_logits).clone()
        logits[..., end] = 1e4
        return logits

    engine.backend.forward = prefer_end
    try:
        c = engine.generate(ids, GenerationParams(max_new_tokens=5, sampling=GREEDY), 256).run()
    finally:
        engine.backend.forward = original
    assert (c.text, c.finish_reason, c.usage.completion_tokens) == ("", "stop", 0)


def test_closing_a_generation_marks_it_interrupted(engine):
    gen = engine.generate(prompt(engine), GenerationParams(max_new_tokens=50, sampling=GREEDY), 256)
    for _ in gen:
        break
    gen.close()
    assert gen.completion.finish_reason == "interrupted"


def test_the_reply_stops_at_the_window_edge(engine):
    ids = prompt(engine)
    c = engine.generate(ids, GenerationParams(max_new_tokens=500, sampling=SamplingParams(temperature=0, seed=1)),
                        len(ids) + 4).run()
    assert c.usage.completion_tokens <= 4


def test_prompts_that_do_not_fit_are_refused(engine):
    with pytest.raises(ContextOverflowError, match="the prompt has 40 tokens; num_ctx is 40"):
        engine.generate([5] * 40, GenerationParams(), 40)
    with pytest.raises(ContextOverflowError, match="exceeds tiny's context length 512"):
        engine.generate([5], GenerationParams(), 1024)


def test_next_token_logprobs_equal_transformers_and_reuse_the_cache(engine, tiny_model):
    from transformers import AutoModelForCausalLM

    ids = prompt(engine, "the post office opens at")
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model))
    with torch.no_grad():
        expected = torch.log_softmax(model(torch.tensor([ids])).logits[0, -1].float(), dim=-1)
    got = engine.next_token_logprobs(ids, 256)
    assert got.shape == expected.shape and torch.allclose(got, expected, atol=1e-4)
    longer = ids + [int(got.argmax())]
    step = engine.next_token_logprobs(longer, 256)  # one more token: the prompt comes from the cache
    assert engine._cache.ids == longer[:-1] + [longer[-1]]
    with torch.no_grad():
        again = torch.log_softmax(model(torch.tensor([longer])).logits[0, -1].float(), dim=-1)
    assert torch.allclose(step, again, atol=1e-4)
    with pytest.raises(ContextOverflowError, match="the prompt has 10 tokens; num_ctx is 8"):
        engine.next_token_logprobs(list(range(10)), 8)
