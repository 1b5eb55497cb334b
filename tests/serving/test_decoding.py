"""logprobs, top_logprobs and response_format on chat: what reaches the engine, and
the 400s for what cannot be done."""

import json

from serve_client import chat

from pimpmyllama.generation.json_grammar import JsonGrammar

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def test_logprobs_and_response_format_reach_the_engine(client, fake_engine):
    chat(client, logprobs=True, top_logprobs=3,
         response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": SCHEMA, "strict": True}})
    chat(client, logprobs=True, response_format={"type": "json_object"})
    chat(client, response_format={"type": "text"})
    first, second, third = fake_engine.params
    assert (first.logprobs, first.grammar) == (3, JsonGrammar(json.dumps(SCHEMA)))
    assert (second.logprobs, second.grammar) == (0, JsonGrammar('{"type": "object"}'))
    assert (third.logprobs, third.grammar) == (None, None)  # nothing asked, nothing computed


def test_what_cannot_be_done_is_a_400_naming_the_field(client, fake_engine):
    cases = [
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "objectx"}}}},
         "response_format", "Invalid type: objectx"),
        ({"response_format": {"type": "json_schema"}}, "response_format", "json_schema is given"),
        ({"response_format": {"type": "yaml"}}, "response_format.type", "json_object"),
        ({"top_logprobs": 2}, None, "top_logprobs needs logprobs"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs", "less than or equal to 20"),
    ]
    for fields, param, words in cases:
        response = chat(client, **fields)
        assert response.status_code == 400, fields
        error = response.json()["error"]
        assert error["param"] == param and words in error["message"], (fields, error)
    assert fake_engine.params == []
