"""Constrained decoding with llguidance on the tiny random model: whatever it samples,
the reply is JSON that validates against the schema, and the reply ends when it closes."""

import json

import jsonschema
import pytest
import torch

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.generation.constraints import mask_logits
from pimpmyllama.generation.engine import Engine, GenerationParams
from pimpmyllama.generation.json_grammar import JsonGrammar
from pimpmyllama.generation.sampling import SamplingParams

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 12},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "member": {"type": "boolean"},
        "colour": {"enum": ["red", "green", "blue"]},
    },
    "required": ["name", "age", "member", "colour"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def engine(tiny_model):
    return Engine.load("tiny", tiny_model)


def test_a_hundred_sampled_replies_all_validate(engine):
    ids = engine.chat_format().encode([{"role": "user", "content": "Describe a person as JSON."}])
    grammar = JsonGrammar.from_schema(SCHEMA)
    for seed in range(100):
        sampling = SamplingParams(temperature=1.0, top_k=0, top_p=1.0, repeat_penalty=1.0, seed=seed)
        completion = engine.generate(ids, GenerationParams(max_new_tokens=200, sampling=sampling,
                                                           grammar=grammar), 512).run()
        assert completion.finish_reason == "stop", (seed, completion.text)
        jsonschema.validate(json.loads(completion.text), SCHEMA)


def test_any_object_and_the_model_unconstrained_is_not_json(engine):
    ids = engine.chat_format().encode([{"role": "user", "content": "hi"}])
    sampling = SamplingParams(temperature=1.0, top_k=0, top_p=1.0, seed=5)
    free = engine.generate(ids, GenerationParams(max_new_tokens=30, sampling=sampling), 512).run()
    with pytest.raises(ValueError):  # the random model on its own does not write JSON
        json.loads(free.text)
    grammar = JsonGrammar.from_schema({"type": "object"})
    replies = [engine.generate(ids, GenerationParams(max_new_tokens=120, sampling=SamplingParams(
        temperature=1.0, top_k=0, top_p=1.0, seed=seed), grammar=grammar), 512).run() for seed in range(5)]
    for completion in replies:
        if completion.finish_reason == "stop":
            assert isinstance(json.loads(completion.text), dict)
        else:  # cut by max_new_tokens: still the beginning of an object
            assert completion.text.startswith("{")
    assert any(c.finish_reason == "stop" for c in replies)


def test_an_unusable_schema_is_refused_with_the_reason():
    with pytest.raises(InvalidInputError, match="Invalid type: objectx"):
        JsonGrammar.from_schema({"type": "objectx"})


def test_the_mask_leaves_only_allowed_tokens_and_never_padding_rows():
    logits = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    out = mask_logits(logits, torch.tensor([True, False, True, False]))
    assert out.tolist() == [1.0, float("-inf"), 3.0, float("-inf"), float("-inf")]
