"""Opening a conversation: resolve what to run, check every part of the request,
load the engine, and only then open (or create) the session — so a request that
fails leaves no session, turn or row behind."""

from collections.abc import Callable
from datetime import datetime

from pimpmyllama.chat.conversation import Conversation
from pimpmyllama.chat.resolve import load_engine
from pimpmyllama.errors import InvalidInputError
from pimpmyllama.generation.engine import Engine
from pimpmyllama.generation.precision import check_precision
from pimpmyllama.knowledge.store import KnowledgeStore
from pimpmyllama.memory.sessions import Session, SessionStore
from pimpmyllama.models.refs import resolve_adapter
from pimpmyllama.names import check_name
from pimpmyllama.progress import Progress
from pimpmyllama.prompting.build import Build
from pimpmyllama.prompting.refs import ResolvedBuild, resolve_build
from pimpmyllama.prompting.remote_model import RemoteModel
from pimpmyllama.prompting.styles import StyleSpec, merge_styles, resolve_styles
from pimpmyllama.storage.db import open_database


def new_session_name(sessions: SessionStore) -> str:
    base = datetime.now().strftime("chat-%Y%m%d-%H%M%S")
    name, n = base, 1
    while sessions.find(name):
        n += 1
        name = f"{base}-{n}"
    return name


def knowledge_for(build: Build, db) -> KnowledgeStore | None:
    """The store that serves the build's knowledge bases (None: it has none); an unknown base fails now."""
    if not build.knowledge:
        return None
    store = KnowledgeStore(db)
    for name in build.knowledge:
        store.get(name)  # an unknown base fails now, not at the first message
    return store


def load_build_engine(build: Build, progress: Progress | None = None) -> Engine:
    """The engine a build runs on: its model, adapter, precision and rope scaling (with
    the KV cache checked for its num_ctx, when it sets one); or the remote engine of a
    model on an endpoint (asked for its context size now: an unreachable one fails here)."""
    p = build.parameters
    if isinstance(build.from_, RemoteModel):
        for name in ("adapter", "precision"):
            if getattr(build, name):
                raise InvalidInputError(f"{name} needs a local model; {build.from_.label} runs elsewhere")
        if p.rope_scaling is not None:
            raise InvalidInputError(f"rope_scaling needs a local model; {build.from_.label} runs elsewhere")
        from pimpmyllama.generation.remote import RemoteEngine  # httpx: only for a model elsewhere

        return RemoteEngine(build.from_)
    return load_engine(build.from_, progress, adapter=build.adapter, precision=build.precision,
                       rope_scaling=p.rope_scaling, num_ctx=p.num_ctx if "num_ctx" in p.model_fields_set else None)


def open_build(build: Build, progress: Progress | None = None, engine: Engine | None = None) -> Conversation:
    """A conversation with `build` that remembers nothing: no session, every message
    answered on its own (what a comparison asks). `engine`: one already loaded for
    this build (a server keeps its engines), else it is loaded."""
    store = knowledge_for(build, open_database())
    return Conversation(engine or load_build_engine(build, progress), build, knowledge=store)


def open_conversation(build_ref: str | None = None, session_name: str | None = None, *,
                      continue_latest: bool = False, new_session: bool = True,
                      knowledge: list[str] | None = None, adapter: str | None = None,
                      precision: str | None = None, styles: list[StyleSpec] | None = None,
                      progress: Progress | None = None, sessions: SessionStore | None = None,
                      engine_for: Callable[[Build, Progress | None], Engine] = load_build_engine,
                      ) -> tuple[Conversation, ResolvedBuild]:
    """A conversation with `build_ref` (a build, build file or model reference; by
    default the named session's build, else the bundled model). With `new_session`,
    a session is created when none is named; `session_name` names one to resume or
    create. `styles` are added to the build's (one of the same name replaces it).
    `engine_for`: how the build's engine is had (a process that keeps engines passes its own)."""
    if session_name is not None:
        check_name(session_name, "session")
    sessions = sessions or SessionStore(open_database())
    session: Session | None = None
    if continue_latest:
        session = sessions.latest()
        if session is None:
            raise InvalidInputError("there is no session to continue")
    elif session_name:
        session = sessions.find(session_name)
    if session is not None and build_ref is None:
        build_ref = session.build
    resolved = resolve_build(build_ref)
    build = resolved.build
    if adapter:
        resolve_adapter(adapter)
        build = build.model_copy(update={"adapter": adapter})
    if precision:
        build = build.model_copy(update={"precision": check_precision(precision).name})
    if knowledge:
        build = build.model_copy(update={"knowledge": [*build.knowledge, *knowledge]})
    if styles:
        build = build.model_copy(update={"styles": merge_styles(build.styles, styles)})
    resolve_styles(build.styles)  # an unknown style or a missing parameter fails now
    store = knowledge_for(build, sessions.db)
    engine = engine_for(build, progress)
    # Everything is known to be valid: only now is anything written.
    if session is None and (session_name or new_session):
        session = sessions.create(session_name or new_session_name(sessions), resolved.ref)
    elif session is not None and build_ref != session.build:
        sessions.set_build(session, resolved.ref)
    return Conversation(engine, build, sessions=sessions, session=session, knowledge=store), resolved
