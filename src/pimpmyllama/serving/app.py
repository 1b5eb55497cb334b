"""The FastAPI application: routes only; each one calls the module that does its work."""

from fastapi import Depends, FastAPI
from fastapi.responses import StreamingResponse

from pimpmyllama import __version__
from pimpmyllama.serving.auth import require_key
from pimpmyllama.serving.chat import start_answer
from pimpmyllama.serving.disconnect import closed_on_disconnect
from pimpmyllama.serving.engines import EnginePool
from pimpmyllama.serving.errors import install_error_handlers
from pimpmyllama.serving.models_list import served_models
from pimpmyllama.serving.pml_routes import pml_router
from pimpmyllama.serving.report import pml_report
from pimpmyllama.serving.responses import ChatIds
from pimpmyllama.serving.schema import ChatCompletionRequest
from pimpmyllama.serving.streaming import sse_chunks
from pimpmyllama.serving.web import web_router


def create_app(*, api_key: str | None = None) -> FastAPI:
    """The OpenAI-compatible API. With `api_key`, every endpoint but /health needs
    `Authorization: Bearer <api_key>`. Engines are loaded on first use and kept."""
    app = FastAPI(title="pimpmyllama", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    install_error_handlers(app)
    pool = EnginePool()
    keyed = [Depends(require_key(api_key))]

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/v1/models", dependencies=keyed)
    def models() -> dict:
        return {"object": "list", "data": served_models()}

    # Plain `def`: FastAPI runs these in its thread pool, so a generation (CPU-bound,
    # behind its engine's lock) does not stop the server from taking requests.
    @app.post("/v1/chat/completions", dependencies=keyed)
    def chat_completions(request: ChatCompletionRequest):
        answer = start_answer(pool, request)
        if request.stream:
            include_usage = bool(request.stream_options and request.stream_options.include_usage)
            return StreamingResponse(closed_on_disconnect(sse_chunks(answer, include_usage)),
                                     media_type="text/event-stream")
        for _ in answer.deltas():
            pass
        return {**ChatIds(request.model).completion(answer.reply.completion), "pml": pml_report(answer)}

    app.include_router(pml_router(keyed))
    app.include_router(web_router())
    return app
