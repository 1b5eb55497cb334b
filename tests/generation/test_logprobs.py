"""Log-probs of a reply's tokens and of a prompt's, on the tiny model; and how the
entries of a streamed reply travel with its text when stop strings hold text back."""

import pytest
import torch

from pimpmyllama.generation.engine import Engine, GenerationParams
from pimpmyllama.generation.logprobs import Piece
from pimpmyllama.generation.sampling import SamplingParams
from pimpmyllama.generation.sequence import Sequence

GREEDY = SamplingParams(temperature=0, repeat_penalty=1.0)


@pytest.fixture(scope="module")
def engine(tiny_model):
    return Engine.load("tiny", tiny_model, precision="fp32")


def test_each_greedy_token_has_the_models_log_prob_and_is_the_top_one(engine):
    ids = engine.chat_format().encode([{"role": "user", "content": "hello world"}])
    params = GenerationParams(max_new_tokens=10, sampling=GREEDY, logprobs=5, ignore_end_tokens=True)
    completion = engine.generate(ids, params, 256).run()
    assert [e.token for e in completion.logprobs] == completion.tokens and len(completion.tokens) == 10
    # The model's distribution computed separately: one pass over prompt + reply, every position's logits.
    logits = engine.backend.forward(ids + completion.tokens[:-1], engine.backend.new_cache(256), 0, all_logits=True)
    expected = torch.log_softmax(logits[len(ids) - 1 :], dim=-1)
    for at, entry in enumerate(completion.logprobs):
        assert entry.logprob == pytest.approx(float(expected[at, entry.token]), abs=1e-4)
        assert len(entry.top) == 5
        top_values = [lp for _, lp in entry.top]
        assert top_values == sorted(top_values, reverse=True)
        assert entry.top[0] == (entry.token, entry.logprob)  # greedy: the chosen token is the argmax
        assert [t for t, _ in entry.top] == torch.topk(expected[at], 5).indices.tolist()


def test_log_probs_are_those_before_temperature_and_penalties(engine):
    ids = engine.chat_format().encode([{"role": "user", "content": "hello"}])
    hot = SamplingParams(temperature=1.7, top_k=0, top_p=1.0, repeat_penalty=1.5, presence_penalty=1.0, seed=3)
    completion = engine.generate(ids, GenerationParams(max_new_tokens=4, sampling=hot, logprobs=0,
                                                       ignore_end_tokens=True), 256).run()
    logits = engine.backend.forward(ids + completion.tokens[:-1], engine.backend.new_cache(256), 0, all_logits=True)
    expected = torch.log_softmax(logits[len(ids) - 1 :], dim=-1)
    assert [e.logprob for e in completion.logprobs] == pytest.approx(
        [float(expected[at, t]) for at, t in enumerate(completion.tokens)], abs=1e-4)
    assert all(e.top == () for e in completion.logprobs)


def test_without_logprobs_nothing_is_computed(engine):
    ids = engine.chat_format().encode([{"role": "user", "content": "hello"}])
    generation = engine.generate(ids, GenerationParams(max_new_tokens=4, sampling=GREEDY), 256)
    pieces = list(generation)
    assert all(type(p) is str for p in pieces)
    assert generation.completion.logprobs is None


def test_prompt_log_probs_equal_transformers(engine, tiny_model):
    from transformers import AutoModelForCausalLM

    ids = engine.tokenizer.encode("the cat sat on the mat and then it slept")
    entries = engine.prompt_logprobs(ids, top_n=2)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model))
    with torch.no_grad():
        reference = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)
    assert entries[0] is None and len(entries) == len(ids)
    for at in range(1, len(ids)):
        assert entries[at].token == ids[at]
        assert entries[at].logprob == pytest.approx(float(reference[at - 1, ids[at]]), abs=1e-4)
        assert [t for t, _ in entries[at].top] == torch.topk(reference[at - 1], 2).indices.tolist()


def drive(tokenizer, tokens, stop, logprobs=0):
    """A sequence fed logits that pick `tokens` in turn: the pieces it releases."""
    sequence = Sequence(tokenizer, [1, 2], GenerationParams(max_new_tokens=len(tokens), sampling=GREEDY,
                                                           stop=tuple(stop), logprobs=logprobs), 512)
    pieces = []
    for token in tokens:
        logits = torch.zeros(tokenizer.vocab_size)
        logits[token] = 10.0
        pieces.append(sequence.accept(logits))
        if sequence.done:
            break
    return pieces, sequence.completion()


def test_entries_travel_with_their_text_and_a_stop_strings_never_do(engine):
    tokenizer = engine.tokenizer
    tokens = tokenizer.encode("hello world, the END is near")
    pieces, completion = drive(tokenizer, tokens, ["END"])
    assert completion.text == "hello world, the "
    assert all(isinstance(p, Piece) for p in pieces)
    released, sent = "", []
    for piece in pieces:
        released += piece
        sent += [e.token for e in piece.logprobs]
        # never an entry before its text: the entries so far decode to no more than the text so far
        assert len(tokenizer.decode(sent)) <= len(released)
    assert released == completion.text
    # the tokens shown (those whose text starts before the cut) and only those; the same when not streamed
    shown = [t for i, t in enumerate(tokens) if len(tokenizer.decode(tokens[:i])) < len(completion.text)]
    assert sent == shown == [e.token for e in completion.logprobs]
    assert len(shown) < len(tokens)
    assert tokenizer.decode(shown).startswith(completion.text)


def test_without_stop_strings_every_token_comes_with_its_own_text(engine):
    tokenizer = engine.tokenizer
    tokens = tokenizer.encode("hello world")
    pieces, completion = drive(tokenizer, tokens, [])
    assert [tokenizer.decode([e.token for e in p.logprobs]) for p in pieces] == list(pieces)
    assert [e.token for e in completion.logprobs] == tokens
