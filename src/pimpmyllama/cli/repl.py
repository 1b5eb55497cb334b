"""The interactive chat loop behind `pml chat`."""

from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from pimpmyllama.cli.console import cells, escape, out, write_stream
from pimpmyllama.cli.render import render_context, render_sources, usage_line
from pimpmyllama.errors import PmlError

HELP = [
    ("/system TEXT", "set the session's system prompt (/system alone: back to the build's)"),
    ("/pin FACT", "keep a fact in the context for every turn"),
    ("/unpin N", "remove pinned fact number N"),
    ("/pins", "list the pinned facts"),
    ("/context", "show what the next prompt holds, section by section"),
    ("/reset", "forget this session's conversation (system prompt and pins stay)"),
    ("/memory", "list what long-term memory holds (turns that left the window)"),
    ("/forget N", "remove memory number N"),
    ("/sessions", "list sessions"),
    ("/help", "this list"),
    ("/exit", "leave (also /bye or Ctrl-D)"),
    ('"""', "start or end a multi-line message"),
]


class ChatRepl:
    def __init__(self, conversation, build_ref: str | None, *, console: Console = out,
                 read_line: Callable[[str], str] = input):
        self.conversation = conversation
        self.build_ref = build_ref
        self.console = console
        self.read_line = read_line

    def run(self) -> None:
        conv = self.conversation
        self.console.print(
            f"[bold]{escape(self.build_ref or conv.engine.name)}[/] (model {escape(conv.engine.name)}) · "
            f"session [bold]{escape(conv.session.name)}[/] · /help for commands, /exit to leave"
        )
        while True:
            try:
                line = self._read_message()
            except EOFError:
                self.console.print()
                return
            except KeyboardInterrupt:
                self.console.print("\n[dim](use /exit or Ctrl-D to leave)[/]")
                continue
            if line is None or not line.strip():
                continue
            try:
                if line.startswith("/"):
                    if self._command(line.strip()) == "exit":
                        return
                else:
                    self._turn(line)
            except PmlError as exc:
                self.console.print(f"[red]error:[/] {escape(str(exc))}")

    def _read_message(self) -> str | None:
        line = self.read_line(">>> ")
        if line.strip() != '"""':
            return line
        lines = []
        while True:
            more = self.read_line("... ")
            if more.strip() == '"""':
                return "\n".join(lines)
            lines.append(more)

    def _turn(self, message: str) -> None:
        reply = self.conversation.send(message)
        try:
            for delta in reply:
                write_stream(delta)
        except KeyboardInterrupt:
            write_stream("\n")
            self.console.print("[yellow]\\[interrupted][/]")
            return
        write_stream("\n")
        render_sources(self.console, reply.context)
        self.console.print(f"[dim]{usage_line(reply.completion, reply.context)}[/]")

    def _command(self, line: str) -> str | None:
        name, _, arg = line.partition(" ")
        arg = arg.strip()
        conv = self.conversation
        if name in ("/exit", "/bye", "/quit"):
            return "exit"
        if name == "/help":
            table = Table(show_header=False, box=None)
            for cmd, text in HELP:
                table.add_row(cmd, text)
            self.console.print(table)
        elif name == "/system":
            conv.set_system(arg or None)
            self.console.print("system prompt set" if arg else "system prompt back to the build's")
        elif name == "/pin":
            if not arg:
                raise PmlError("usage: /pin FACT")
            conv.pin(arg)
            self.console.print(f"pinned #{len(conv.pinned)}")
        elif name == "/unpin":
            if not arg.isdigit():
                raise PmlError("usage: /unpin N (see /pins)")
            removed = conv.unpin(int(arg))
            self.console.print(f"unpinned: {removed}", markup=False)
        elif name == "/pins":
            pins = conv.pinned
            if not pins:
                self.console.print("no pinned facts")
            for i, fact in enumerate(pins, 1):
                self.console.print(f"{i}. {fact}", markup=False)
        elif name == "/context":
            render_context(self.console, conv.pack(""), conv.evicted_turns())
        elif name == "/memory":
            memories = conv.memories()
            if not memories:
                self.console.print("long-term memory is empty")
            for i, m in enumerate(memories, 1):
                preview = m.text.replace("\n", " · ")
                self.console.print(f"{i}. (turn #{m.turn_idx}) {preview[:100]}", markup=False)
        elif name == "/forget":
            if not arg.isdigit():
                raise PmlError("usage: /forget N (see /memory)")
            forgotten = conv.forget(int(arg))
            self.console.print(f"forgot turn #{forgotten.turn_idx}")
        elif name == "/reset":
            count = conv.reset()
            self.console.print(f"conversation reset ({count} turns forgotten)")
        elif name == "/sessions":
            table = Table("NAME", "BUILD", "TURNS", "UPDATED", box=None)
            for row in conv.sessions.summaries():
                mark = " *" if row.name == conv.session.name else ""
                table.add_row(*cells(row.name + mark, row.build or "-", row.turns, row.updated_at))
            self.console.print(table)
        else:
            raise PmlError(f"unknown command {name} (try /help)")
        return None
