"""Chat completion bodies in OpenAI's shapes: `chat.completion` for a whole reply,
`chat.completion.chunk` for each piece of a streamed one."""

import time
import uuid

from pimpmyllama.generation.engine import Completion
from pimpmyllama.serving.errors import ApiError
from pimpmyllama.serving.logprobs import chat_logprobs

# Our engine's reasons; "interrupted" only happens to a reply nobody reads any more,
# and a "timeout" is an error (`ended_in_time`).
FINISH_REASONS = {"stop": "stop", "length": "length", "interrupted": "stop"}


def ended_in_time(completion: Completion) -> None:
    """408 for a reply that its request's `timeout` ended."""
    if completion.finish_reason == "timeout":
        raise ApiError(408, f"the request's timeout passed after {completion.usage.completion_tokens} generated "
                            "tokens: ask for fewer tokens or allow more time", param="timeout", code="timeout")


def usage_of(completion: Completion) -> dict:
    u = completion.usage
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
            "total_tokens": u.prompt_tokens + u.completion_tokens}


class ChatIds:
    """What every body of one completion shares: its id, creation time and model."""

    def __init__(self, model: str):
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model

    def _head(self, kind: str) -> dict:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}

    def completion(self, completion: Completion, tokenizer=None) -> dict:
        return {
            **self._head("chat.completion"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": completion.text},
                         "logprobs": chat_logprobs(tokenizer, completion.logprobs),
                         "finish_reason": FINISH_REASONS[completion.finish_reason]}],
            "usage": usage_of(completion),
        }

    def chunk(self, delta: dict, finish_reason: str | None = None, *, with_usage: bool = False,
              logprobs: dict | None = None) -> dict:
        body = {**self._head("chat.completion.chunk"),
                "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}]}
        if with_usage:  # OpenAI: with include_usage, every chunk has "usage": null but the last
            body["usage"] = None
        return body

    def usage_chunk(self, completion: Completion) -> dict:
        return {**self._head("chat.completion.chunk"), "choices": [], "usage": usage_of(completion)}
