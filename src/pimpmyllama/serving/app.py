"""The FastAPI application: routes only; each one calls the module that does its work."""

import asyncio
import time

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from pimpmyllama import __version__
from pimpmyllama.serving.auth import require_key
from pimpmyllama.serving.chat import Answer, start_answer
from pimpmyllama.serving.completions import CompletionRequest, TextCompletion, sse
from pimpmyllama.serving.embeddings import EmbeddingRequest, embed
from pimpmyllama.serving.engines import EnginePool
from pimpmyllama.serving.errors import install_error_handlers
from pimpmyllama.serving.limits import BodyLimit
from pimpmyllama.serving.metrics import CONTENT_TYPE, CountRequests, Metrics
from pimpmyllama.serving.models_list import served_models
from pimpmyllama.serving.pml_routes import pml_router
from pimpmyllama.serving.report import pml_report
from pimpmyllama.serving.responses import ChatIds, ended_in_time
from pimpmyllama.serving.schema import ChatCompletionRequest
from pimpmyllama.serving.streaming import EventStream, sse_chunks
from pimpmyllama.serving.threads import in_own_thread
from pimpmyllama.serving.tokenize import tokenize_router
from pimpmyllama.serving.upload import UPLOAD_MAX_BYTES
from pimpmyllama.serving.web import web_router


def create_app(*, api_key: str | None = None, max_batch: int = 8, max_queue: int = 64,
               preload: tuple[str, ...] = (), max_body_bytes: int = 8_000_000) -> FastAPI:
    """The OpenAI-compatible API. With `api_key`, every endpoint but /health needs
    `Authorization: Bearer <api_key>`. Engines are loaded on first use (the models in
    `preload` at start, /health answering 503 until they are) and kept; each decodes up
    to `max_batch` requests together, `max_queue` more wait, and beyond that 503. A
    request body over `max_body_bytes` is 413 (document uploads have their own limit)."""
    pool = EnginePool(max_batch, max_queue)
    metrics = Metrics(pool)
    app = FastAPI(title="pimpmyllama", version=__version__, docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=_lifespan(pool, preload))
    app.state.pool = pool
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes, upload_bytes=UPLOAD_MAX_BYTES)
    app.add_middleware(CountRequests, metrics=metrics)
    keyed = [Depends(require_key(api_key))]

    @app.get("/health")
    def health():
        if pool.loading:
            return JSONResponse({"status": "loading"}, status_code=503, headers={"Retry-After": "1"})
        return {"status": "ok"}

    @app.get("/metrics", dependencies=keyed)
    def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/v1/models", dependencies=keyed)
    def models() -> dict:
        return {"object": "list", "data": served_models()}

    @app.post("/v1/chat/completions", dependencies=keyed)
    async def chat_completions(request: ChatCompletionRequest, http: Request):
        arrived = time.perf_counter()
        # resolving, loading and packing read files and may run torch: off the event loop
        answer = await in_own_thread(start_answer, pool, request)

        def ended():
            metrics.replied(answer.reply.completion, time.perf_counter() - arrived)

        if request.stream:
            include_usage = bool(request.stream_options and request.stream_options.include_usage)
            return EventStream(sse_chunks(answer, include_usage, ended))
        try:
            await _reply_unless_disconnected(answer, http)
        finally:
            ended()
        ended_in_time(answer.reply.completion)
        return {**ChatIds(request.model).completion(answer.reply.completion, answer.tokenizer), "pml": pml_report(answer)}

    @app.post("/v1/completions", dependencies=keyed)
    async def completions(request: CompletionRequest):
        completion = await in_own_thread(TextCompletion, pool, request)
        if request.stream:
            return EventStream(sse(completion.chunks()))
        return await in_own_thread(completion.body)

    @app.post("/v1/embeddings", dependencies=keyed)
    async def embeddings(request: EmbeddingRequest) -> dict:
        return await in_own_thread(embed, request)

    app.include_router(pml_router(keyed))
    app.include_router(tokenize_router(pool, keyed))
    app.include_router(web_router())
    return app


async def _reply_unless_disconnected(answer: Answer, http: Request) -> None:
    """Generate the whole reply, or stop as soon as the client disconnects."""

    async def generate():
        async for _ in answer.reply:
            pass

    async def disconnected():
        while (await http.receive())["type"] != "http.disconnect":
            pass

    reply, gone = asyncio.ensure_future(generate()), asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait([reply, gone], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (reply, gone):
            task.cancel()
        await asyncio.gather(reply, gone, return_exceptions=True)
    if not reply.cancelled() and reply.exception() is not None:
        raise reply.exception()


def _lifespan(pool: EnginePool, preload: tuple[str, ...]):
    from contextlib import asynccontextmanager

    from pimpmyllama.serving.chat import resolve_served

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loads = [asyncio.ensure_future(in_own_thread(pool.get, resolve_served(ref))) for ref in preload]
        yield
        for load in loads:
            load.cancel()
        await run_in_threadpool(pool.close)

    return lifespan
