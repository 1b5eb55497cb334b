"""`/pml/...`: the small JSON endpoints the web page needs beside OpenAI's — sessions,
knowledge bases (with uploads) and a model's settings. The API key applies to all."""

from fastapi import APIRouter, UploadFile

from pimpmyllama.knowledge.bases import knowledge_store
from pimpmyllama.memory.sessions import SessionStore
from pimpmyllama.prompting.styles import BUILTIN, load_user_styles
from pimpmyllama.serving.chat import resolve_served
from pimpmyllama.serving.threads import in_own_thread
from pimpmyllama.serving.upload import UPLOAD_MAX_BYTES, upload_document
from pimpmyllama.storage.db import open_database


def pml_router(dependencies: list) -> APIRouter:
    router = APIRouter(prefix="/pml", dependencies=dependencies)

    @router.get("/sessions")
    def sessions() -> dict:
        """Every session, the most recently used first."""
        return {"data": [s.__dict__ for s in SessionStore(open_database()).summaries()]}

    @router.get("/sessions/{name}")
    def session(name: str) -> dict:
        """A session and its turns, oldest first (404 for an unknown one)."""
        store = SessionStore(open_database())
        found = store.get(name)
        turns = [{"index": t.index, "user": t.user, "reply": t.reply, "status": t.status,
                  "created_at": t.created_at} for t in store.turns(found)]
        return {"name": found.name, "build": found.build, "system": found.system,
                "window_start": found.window_start, "turns": turns}

    @router.get("/knowledge")
    def knowledge() -> dict:
        return {"data": [s.__dict__ for s in knowledge_store().summaries()]}

    # A plain `def`: embedding runs in FastAPI's thread pool, not on the event loop.
    @router.post("/knowledge/{name}/documents")
    async def upload(name: str, file: UploadFile) -> dict:
        """One document into the knowledge base `name` (created if new); embedding
        runs torch: in a thread of its own (serving/threads.py)."""
        content = await file.read(UPLOAD_MAX_BYTES + 1)
        return await in_own_thread(upload_document, name, file.filename, content)

    @router.get("/settings")
    def settings(model: str) -> dict:
        """What a request to `model` starts from: its build's system prompt, styles,
        knowledge bases and parameters, and the styles there are to choose from."""
        build = resolve_served(model)
        return {"model": model, "system": build.system, "styles": build.styles, "knowledge": build.knowledge,
                "parameters": build.parameters.model_dump(), "styles_known": {**BUILTIN, **load_user_styles()}}

    return router
