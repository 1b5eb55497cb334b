"""What a request asks of the decoding itself, beyond a build's parameters: token
log-probs (`logprobs`, `top_logprobs`) and the reply's shape (`response_format`,
enforced by constrained decoding: generation/json_grammar.py)."""

import time

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.serving.errors import ApiError
from pimpmyllama.serving.schema import ResponseFormat


def grammar_for(response_format: ResponseFormat | None):
    """The grammar a `response_format` asks for (None: free text); 400 naming the field
    for a schema that cannot be enforced."""
    if response_format is None or response_format.type == "text":
        return None
    from pimpmyllama.generation.json_grammar import JsonGrammar

    schema = {"type": "object"} if response_format.type == "json_object" else response_format.json_schema.schema_
    try:
        return JsonGrammar.from_schema(schema)
    except InvalidInputError as exc:
        raise ApiError(400, f"response_format: {exc}", param="response_format", code="invalid_value") from None


def request_decoding(request) -> dict:
    """GenerationParams fields any completion request may set: `ignore_eos`, and
    `timeout` as a deadline counted from now (the request has just been read)."""
    decoding = {}
    if request.ignore_eos:
        decoding["ignore_end_tokens"] = True
    if request.timeout is not None:
        decoding["deadline"] = time.monotonic() + request.timeout
    return decoding


def chat_decoding(request) -> dict:
    """GenerationParams fields a chat request sets (only those it asks for)."""
    decoding = request_decoding(request)
    if request.logprobs:
        decoding["logprobs"] = request.top_logprobs or 0
    grammar = grammar_for(request.response_format)
    if grammar is not None:
        decoding["grammar"] = grammar
    return decoding
