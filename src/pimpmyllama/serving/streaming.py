"""A streamed reply as server-sent events: `data: {chunk}` per piece, the finish
reason, the usage when asked, then `data: [DONE]`. An error after the stream has
begun cannot change the status any more: it is sent as a last `data: {"error": ...}`.
A client that goes away ends the stream and, with it, the reply's generation."""

import json
from collections.abc import AsyncIterator, Callable

from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from pimpmyllama.errors import PmlError
from pimpmyllama.generation.logprobs import Piece
from pimpmyllama.serving.chat import Answer
from pimpmyllama.serving.errors import ApiError, as_api_error
from pimpmyllama.serving.logprobs import chat_logprobs
from pimpmyllama.serving.report import pml_report
from pimpmyllama.serving.responses import FINISH_REASONS, ChatIds, ended_in_time


def sse_event(body: dict | str) -> str:
    return f"data: {body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)}\n\n"


class EventStream(StreamingResponse):
    """A text/event-stream response that closes its events' generator however the
    response ends — a client that disconnected included — so the generation stops."""

    media_type = "text/event-stream"

    def __init__(self, events):
        super().__init__(events)
        self._events = events

    async def stream_response(self, send) -> None:
        try:
            await super().stream_response(send)
        finally:
            if hasattr(self._events, "aclose"):
                await self._events.aclose()
            else:  # a plain generator, run in worker threads
                await run_in_threadpool(self._events.close)


async def sse_chunks(answer: Answer, include_usage: bool, ended: Callable[[], None] = lambda: None
                     ) -> AsyncIterator[str]:
    """`ended()` is called once the reply has ended, however it ended."""
    ids = ChatIds(answer.model)
    pieces = aiter(answer.reply)
    try:
        yield sse_event(ids.chunk({"role": "assistant", "content": ""}, with_usage=include_usage))
        async for piece in pieces:
            logprobs = chat_logprobs(answer.tokenizer, list(piece.logprobs)) if isinstance(piece, Piece) else None
            yield sse_event(ids.chunk({"content": piece}, with_usage=include_usage, logprobs=logprobs))
        ended_in_time(answer.reply.completion)
    except (PmlError, ApiError) as exc:
        yield sse_event(as_api_error(exc).body())
        yield sse_event("[DONE]")
        return
    finally:
        await pieces.aclose()  # stops the generation when the client went away mid-reply
        ended()
    completion = answer.reply.completion
    last = ids.chunk({}, FINISH_REASONS[completion.finish_reason], with_usage=include_usage)
    yield sse_event({**last, "pml": pml_report(answer)})
    if include_usage:
        yield sse_event(ids.usage_chunk(completion))
    yield sse_event("[DONE]")
