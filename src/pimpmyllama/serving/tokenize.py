"""`/tokenize` and `/apply-template`, as llama-server has them (at the root, not under
/v1), so that another pimpmyllama using this server as a remote engine counts its
prompts exactly (generation/remote_tokens.py). Unlike llama-server's, a request names
its `model` (a stored build or model), since this server serves many."""

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from pimpmyllama.errors import PmlError
from pimpmyllama.prompting.format import ChatFormat
from pimpmyllama.serving.chat import resolve_served
from pimpmyllama.serving.engines import EnginePool
from pimpmyllama.serving.errors import from_pml_error
from pimpmyllama.serving.schema import ChatMessage
from pimpmyllama.serving.threads import in_own_thread


class TokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1)
    content: str
    add_special: bool = False  # the BOS the model's tokenizer adds, if it adds one and the text lacks it
    parse_special: bool = True  # special-token strings in `content` become those tokens


class TemplateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)


def _format(pool: EnginePool, model: str) -> ChatFormat:
    build = resolve_served(model)
    try:
        build.local_model("/tokenize")
        served = pool.get(build)
        return ChatFormat(served.tokenizer, build.template, model_name=model)
    except PmlError as exc:
        raise from_pml_error(exc, param="model") from None


def tokenize(pool: EnginePool, request: TokenizeRequest) -> dict:
    tokenizer = _format(pool, request.model).tokenizer
    text = request.content
    ids = tokenizer.encode_rendered(text, [])[0] if request.parse_special else tokenizer.encode(text)
    if request.add_special:
        added = tokenizer.encode("", add_special_tokens=True)
        if added and ids[:1] != added[:1]:
            ids = added[:1] + ids
    return {"tokens": ids}


def apply_template(pool: EnginePool, request: TemplateRequest) -> dict:
    messages = [{"role": m.role, "content": m.text()} for m in request.messages]
    return {"prompt": _format(pool, request.model).render(messages)}


def tokenize_router(pool: EnginePool, dependencies: list) -> APIRouter:
    router = APIRouter(dependencies=dependencies)

    @router.post("/tokenize")
    async def tokenize_route(request: TokenizeRequest) -> dict:
        return await in_own_thread(tokenize, pool, request)

    @router.post("/apply-template")
    async def apply_template_route(request: TemplateRequest) -> dict:
        return await in_own_thread(apply_template, pool, request)

    return router
