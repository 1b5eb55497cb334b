"""JSON replies guaranteed by llguidance (https://github.com/guidance-ai/llguidance):
a JSON schema becomes a grammar, and its matcher gives the tokens allowed at each
step (a `Constraint`, constraints.py). Compact JSON: no whitespace between tokens, so
a reply cannot wander in spaces and ends when its top-level value closes."""

from dataclasses import dataclass
from functools import cache

import numpy as np
import torch

from pimpmyllama.errors import InvalidInputError

_OPTIONS = {"whitespace_flexible": False}


@cache
def _ll_tokenizer(tokenizer):
    """llguidance's view of a tokenizer (about a second to build): once per tokenizer."""
    from llguidance import LLTokenizer

    ends = sorted(tokenizer.end_token_ids)
    return LLTokenizer(tokenizer.to_json(), n_vocab=tokenizer.vocab_size, eos_token=ends or None)


class _Matcher:
    def __init__(self, matcher, n_vocab: int):
        self._matcher, self._n_vocab = matcher, n_vocab
        self.finished = False

    def allowed(self) -> torch.Tensor:
        bits = np.frombuffer(self._matcher.compute_bitmask(), dtype=np.uint8)
        self._check()
        return torch.from_numpy(np.unpackbits(bits, bitorder="little")[: self._n_vocab].astype(bool))

    def advance(self, token: int) -> None:
        self._matcher.consume_token(token)
        self._check()
        self.finished = self._matcher.is_stopped()

    def _check(self) -> None:
        if self._matcher.is_error():
            raise InvalidInputError(f"the JSON grammar failed: {self._matcher.get_error()}")


@dataclass(frozen=True)
class JsonGrammar:
    """Replies that are JSON matching `schema` (JSON text; '{"type": "object"}': any object)."""

    schema: str

    @classmethod
    def from_schema(cls, schema: dict) -> "JsonGrammar":
        """Refuses (InvalidInputError, with llguidance's reason) a schema it cannot enforce."""
        import json

        from llguidance import LLMatcher

        grammar = cls(json.dumps(schema))
        try:
            text = LLMatcher.grammar_from_json_schema(grammar.schema, overrides=_OPTIONS)
        except ValueError as exc:
            raise InvalidInputError(f"not a usable JSON schema: {exc}") from None
        error = LLMatcher.validate_grammar(text)
        if error and not error.startswith("WARNING"):
            raise InvalidInputError(f"not a usable JSON schema: {error}")
        return grammar

    def start(self, tokenizer) -> _Matcher:
        from llguidance import LLMatcher

        ll = _ll_tokenizer(tokenizer)
        matcher = LLMatcher(ll, LLMatcher.grammar_from_json_schema(self.schema, overrides=_OPTIONS), log_level=0)
        wrapped = _Matcher(matcher, ll.vocab_size)
        wrapped._check()
        return wrapped
