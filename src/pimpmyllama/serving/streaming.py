"""A streamed reply as server-sent events: `data: {chunk}` per piece, the finish
reason, the usage when asked, then `data: [DONE]`. An error after the stream has
begun cannot change the status any more: it is sent as a last `data: {"error": ...}`."""

import json
from collections.abc import Iterator

from pimpmyllama.errors import PmlError
from pimpmyllama.serving.chat import Answer
from pimpmyllama.serving.errors import from_pml_error
from pimpmyllama.serving.report import pml_report
from pimpmyllama.serving.responses import FINISH_REASONS, ChatIds


def _event(body: dict | str) -> str:
    return f"data: {body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)}\n\n"


def sse_chunks(answer: Answer, include_usage: bool) -> Iterator[str]:
    ids = ChatIds(answer.model)
    try:
        yield _event(ids.chunk({"role": "assistant", "content": ""}, with_usage=include_usage))
        for piece in answer.deltas():
            yield _event(ids.chunk({"content": piece}, with_usage=include_usage))
    except PmlError as exc:
        yield _event(from_pml_error(exc).body())
        yield _event("[DONE]")
        return
    completion = answer.reply.completion
    last = ids.chunk({}, FINISH_REASONS[completion.finish_reason], with_usage=include_usage)
    yield _event({**last, "pml": pml_report(answer)})
    if include_usage:
        yield _event(ids.usage_chunk(completion))
    yield _event("[DONE]")
