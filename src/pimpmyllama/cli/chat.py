"""pml chat and pml ask"""

import json
import sys

import typer

from pimpmyllama.cli import device as device_option
from pimpmyllama.cli.console import read_stdin
from pimpmyllama.cli.oneshot import NO_SERVICE, one_shot
from pimpmyllama.cli.terminal import Terminal, local_terminal
from pimpmyllama.errors import InvalidInputError, PmlError
from pimpmyllama.text import check_text


KB = typer.Option(None, "--kb", help="search this knowledge base for every message (repeatable)")
ADAPTER = typer.Option(None, "--adapter", help="apply this LoRA adapter to the model")
PRECISION = typer.Option(None, "--precision", help="fp32, bf16, int8 or int4 (default: the build's, else int4; "
                                                    "int8 for a fine-tuned or merged model)")
STYLE = typer.Option(None, "--style", help="add a prompt style: brief, expert, eli5, step_by_step or one of "
                     "$PML_HOME/styles.yml; NAME:KEY=VALUE gives a parameter (--style expert:field=law); repeatable")


def open_conversation(build_ref: str | None, session_name: str | None, style: list[str] | None = None,
                      term: Terminal | None = None, **options):
    from pimpmyllama.chat.opening import open_conversation as open_
    from pimpmyllama.prompting.styles import parse_style_option

    term = term or local_terminal()
    styles = [parse_style_option(s) for s in style or []]
    with term.progress("Loading") as report:
        conversation, resolved = open_(build_ref, session_name, progress=report, styles=styles, **options)
    kv_cache = getattr(conversation.engine, "kv_cache", None)
    if conversation.build.parameters.rope_scaling is not None and kv_cache is not None:
        # a stretched context's memory, stated for good (the progress line goes away)
        term.err.print(kv_cache.describe(), markup=False, soft_wrap=True)
    return conversation, resolved


def chat(
    build: str = typer.Argument(None, help="build name, build file, or model (default: the bundled model)"),
    session: str = typer.Option(None, "--session", "-s", help="session to resume or create"),
    continue_latest: bool = typer.Option(False, "--continue", "-c", help="continue the most recent session"),
    kb: list[str] = KB,
    adapter: str = ADAPTER,
    precision: str = PRECISION,
    style: list[str] = STYLE,
    device: str = device_option.DEVICE,
):
    """Chat in the terminal, streaming replies; the conversation is kept in a session."""
    device_option.use(device)
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
    no_service: bool = NO_SERVICE,
    device: str = device_option.DEVICE,
):
    """Ask one question and print the reply (for scripts). The model stays loaded in a
    background service between calls (see docs/serving.md); with --device, in this process."""
    device_option.use(device)
    build, question = _split_ask_args(args or [])
    request = {"build": build, "question": question, "session": session, "json": as_json,
               "show_context": show_context, "kb": kb or [], "adapter": adapter, "precision": precision,
               "style": style or []}
    one_shot("ask", request, no_service or device is not None, run_ask)


def run_ask(request: dict, term: Terminal, engine_for=None) -> None:
    """`pml ask` once its arguments are read, printing on `term`; `engine_for` (build,
    progress) -> engine, for a process that keeps its engines (the service)."""
    from pimpmyllama.chat.context_report import context_dict
    from pimpmyllama.cli.render import render_context, render_sources, usage_line

    r = request
    options = {"engine_for": engine_for} if engine_for else {}
    conversation, resolved = open_conversation(r["build"], r["session"], new_session=False, knowledge=r["kb"],
                                               adapter=r["adapter"], precision=r["precision"], style=r["style"],
                                               term=term, **options)
    evicted = conversation.evicted_turns()
    reply = conversation.send(r["question"])
    if r["show_context"] and not r["json"]:
        render_context(term.err, reply.context, evicted)
    if r["json"]:
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
        if r["show_context"]:
            payload["context"] = context_dict(reply.context, evicted)
        term.write(json.dumps(payload, ensure_ascii=False) + "\n")
        return
    for delta in reply:
        term.write(delta)
    term.write("\n")
    render_sources(term.out, reply.context)
    if r["show_context"]:
        term.err.print(f"[dim]{usage_line(reply.completion, reply.context)}[/]")
