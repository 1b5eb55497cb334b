"""pml chat and pml ask"""

import json
import sys
from datetime import datetime

import typer

from pimpmyllama.cli.console import err, out, progress_reporter, read_stdin, write_stream
from pimpmyllama.cli.render import context_dict, render_context, render_sources, usage_line
from pimpmyllama.errors import InvalidInputError, PmlError
from pimpmyllama.text import check_text


def _sessions():
    from pimpmyllama.memory.sessions import SessionStore
    from pimpmyllama.storage.db import open_database

    return SessionStore(open_database())


KB = typer.Option(None, "--kb", help="search this knowledge base for every message (repeatable)")
ADAPTER = typer.Option(None, "--adapter", help="apply this LoRA adapter to the model")
PRECISION = typer.Option(None, "--precision", help="fp32, bf16, int8 or int4 (default: the build's, or int4)")


def _new_session_name(sessions) -> str:
    base = datetime.now().strftime("chat-%Y%m%d-%H%M%S")
    name, n = base, 1
    while sessions.find(name):
        n += 1
        name = f"{base}-{n}"
    return name


def open_conversation(build_ref: str | None, session_name: str | None, *, continue_latest: bool = False,
                      new_session: bool = True, knowledge: list[str] | None = None, adapter: str | None = None,
                      precision: str | None = None):
    """Resolve the build, open (or create) the session, load the engine."""
    from pimpmyllama.chat import resolve
    from pimpmyllama.chat.conversation import Conversation

    sessions = _sessions()
    session = None
    if continue_latest:
        session = sessions.latest()
        if session is None:
            raise InvalidInputError("there is no session to continue")
    elif session_name:
        session = sessions.find(session_name)
    if session is not None and build_ref is None:
        build_ref = session.build
    resolved = resolve.resolve_build(build_ref)
    if session is None and (session_name or new_session):
        session = sessions.create(session_name or _new_session_name(sessions), resolved.ref)
    elif session is not None and build_ref != session.build:
        sessions.set_build(session, resolved.ref)
    build = resolved.build
    if adapter:
        build = build.model_copy(update={"adapter": adapter})
    if precision:
        from pimpmyllama.generation.precision import check_precision

        build = build.model_copy(update={"precision": check_precision(precision).name})
    if knowledge:
        build = build.model_copy(update={"knowledge": [*build.knowledge, *knowledge]})
    store = None
    if build.knowledge:
        from pimpmyllama.knowledge.store import KnowledgeStore

        store = KnowledgeStore(sessions.db)
        for name in build.knowledge:
            store.get(name)  # an unknown base fails now, not at the first message
    with progress_reporter(f"Loading {build.from_}") as report:
        engine = resolve.load_engine(build.from_, report, adapter=build.adapter, precision=build.precision)
    return Conversation(engine, build, sessions=sessions, session=session, knowledge=store), resolved


def chat(
    build: str = typer.Argument(None, help="build name, build file, or model (default: the bundled model)"),
    session: str = typer.Option(None, "--session", "-s", help="session to resume or create"),
    continue_latest: bool = typer.Option(False, "--continue", "-c", help="continue the most recent session"),
    kb: list[str] = KB,
    adapter: str = ADAPTER,
    precision: str = PRECISION,
):
    """Chat in the terminal, streaming replies; the conversation is kept in a session."""
    from pimpmyllama.cli.repl import ChatRepl

    conversation, resolved = open_conversation(build, session, continue_latest=continue_latest, knowledge=kb,
                                               adapter=adapter, precision=precision)
    ChatRepl(conversation, resolved.ref).run()


def _split_ask_args(args: list[str]) -> tuple[str | None, str]:
    from pimpmyllama.chat.resolve import resolve_build

    if len(args) > 2:
        raise InvalidInputError("give at most a build and a question (quote the question)")
    if len(args) == 2:
        build, question = args
    elif len(args) == 1 and (args[0] == "-" or sys.stdin.isatty()):
        build, question = None, args[0]
    elif len(args) == 1:
        # Piped input with one argument: the argument is the build if it names one.
        try:
            resolve_build(args[0])
            build, question = args[0], "-"
        except PmlError:
            build, question = None, args[0]
    else:
        build, question = None, "-"
    if question == "-":
        if sys.stdin.isatty():
            raise InvalidInputError("no question given (pass it as an argument or on stdin)")
        question = read_stdin()
    question = check_text(question, "the question").strip()
    if not question:
        raise InvalidInputError("the question is empty")
    return build, question


def ask(
    args: list[str] = typer.Argument(None, help="[BUILD] QUESTION; the question may come on stdin"),
    session: str = typer.Option(None, "--session", "-s", help="continue (or start) this session"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object: reply, usage, context"),
    show_context: bool = typer.Option(False, "--show-context", help="show what the prompt holds, section by section"),
    kb: list[str] = KB,
    adapter: str = ADAPTER,
    precision: str = PRECISION,
):
    """Ask one question and print the reply (for scripts)."""
    build, question = _split_ask_args(args or [])
    conversation, resolved = open_conversation(build, session, new_session=False, knowledge=kb, adapter=adapter,
                                               precision=precision)
    evicted = conversation.evicted_turns()
    reply = conversation.send(question)
    if show_context and not as_json:
        render_context(err, reply.context, evicted)
    if as_json:
        text = reply.text()
        c = reply.completion
        payload = {
            "build": resolved.ref,
            "model": conversation.engine.name,
            "session": conversation.session.name if conversation.session else None,
            "reply": text,
            "finish_reason": c.finish_reason,
            "usage": c.usage.as_dict(),
            "sources": [{"label": p.label, "source": p.source, "score": p.score} for p in reply.context.knowledge],
        }
        if show_context:
            payload["context"] = context_dict(reply.context, evicted)
        print(json.dumps(payload, ensure_ascii=False))
        return
    for delta in reply:
        write_stream(delta)
    write_stream("\n")
    render_sources(out, reply.context)
    if show_context:
        err.print(f"[dim]{usage_line(reply.completion, reply.context)}[/]")

