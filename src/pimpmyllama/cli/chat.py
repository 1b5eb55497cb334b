"""pml chat and pml ask"""

import json
import sys

import typer

from pimpmyllama.chat.context_report import context_dict
from pimpmyllama.cli.console import err, out, progress_reporter, read_stdin, write_stream
from pimpmyllama.cli.render import render_context, render_sources, usage_line
from pimpmyllama.errors import InvalidInputError, PmlError
from pimpmyllama.text import check_text


KB = typer.Option(None, "--kb", help="search this knowledge base for every message (repeatable)")
ADAPTER = typer.Option(None, "--adapter", help="apply this LoRA adapter to the model")
PRECISION = typer.Option(None, "--precision", help="fp32, bf16, int8 or int4 (default: the build's, else int4; "
                                                    "int8 for a fine-tuned or merged model)")
STYLE = typer.Option(None, "--style", help="add a prompt style: brief, expert, eli5, step_by_step or one of "
                     "$PML_HOME/styles.yml; NAME:KEY=VALUE gives a parameter (--style expert:field=law); repeatable")


def open_conversation(build_ref: str | None, session_name: str | None, style: list[str] | None = None,
                      **options):
    from pimpmyllama.chat.opening import open_conversation as open_
    from pimpmyllama.prompting.styles import parse_style_option

    styles = [parse_style_option(s) for s in style or []]
    with progress_reporter("Loading") as report:
        conversation, resolved = open_(build_ref, session_name, progress=report, styles=styles, **options)
    kv_cache = getattr(conversation.engine, "kv_cache", None)
    if conversation.build.parameters.rope_scaling is not None and kv_cache is not None:
        # a stretched context's memory, stated for good (the progress line goes away)
        err.print(kv_cache.describe(), markup=False, soft_wrap=True)
    return conversation, resolved


def chat(
    build: str = typer.Argument(None, help="build name, build file, or model (default: the bundled model)"),
    session: str = typer.Option(None, "--session", "-s", help="session to resume or create"),
    continue_latest: bool = typer.Option(False, "--continue", "-c", help="continue the most recent session"),
    kb: list[str] = KB,
    adapter: str = ADAPTER,
    precision: str = PRECISION,
    style: list[str] = STYLE,
):
    """Chat in the terminal, streaming replies; the conversation is kept in a session."""
    from pimpmyllama.cli.repl import ChatRepl

    conversation, resolved = open_conversation(build, session, continue_latest=continue_latest, knowledge=kb,
                                               adapter=adapter, precision=precision, style=style)
    ChatRepl(conversation, resolved.ref).run()


def _split_ask_args(args: list[str]) -> tuple[str | None, str]:
    from pimpmyllama.prompting.refs import resolve_build

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
    style: list[str] = STYLE,
):
    """Ask one question and print the reply (for scripts)."""
    build, question = _split_ask_args(args or [])
    conversation, resolved = open_conversation(build, session, new_session=False, knowledge=kb, adapter=adapter,
                                               precision=precision, style=style)
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

