"""Where a command's output goes: this process's terminal, or a client's through the
service. A command written against a `Terminal` prints the same bytes either way:
the service renders with consoles set to the client's width, colours and tty-ness.
"""

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial

from rich.console import Console

from pimpmyllama.cli.console import err, out, progress_reporter, write_stream


@dataclass
class Terminal:
    out: Console
    err: Console
    write: Callable[[str], None]  # streamed reply text, raw, on stdout
    progress: Callable[[str], AbstractContextManager]  # as console.progress_reporter


def local_terminal() -> Terminal:
    return Terminal(out, err, write_stream, progress_reporter)


def _spec(console: Console) -> dict:
    return {"width": console.width, "color_system": console.color_system, "is_terminal": console.is_terminal,
            "no_color": console.no_color}


def terminal_spec() -> dict:
    """This process's stdout and stderr as a service needs them to render for it."""
    return {"out": _spec(out), "err": _spec(err)}


class _Stream:
    def __init__(self, send: Callable[[str], None]):
        self.write = send

    def flush(self) -> None:
        pass


def remote_terminal(spec: dict, send_out: Callable[[str], None], send_err: Callable[[str], None]) -> Terminal:
    def console(s: dict, send) -> Console:
        return Console(file=_Stream(send), width=s["width"], color_system=s["color_system"],
                       force_terminal=s["is_terminal"], no_color=s["no_color"], highlight=False,
                       legacy_windows=False)

    err_console = console(spec["err"], send_err)
    # the "Loading" bar drawn for the client's stderr, as in-process (a refresh thread writes it while the model loads)
    return Terminal(console(spec["out"], send_out), err_console, send_out, partial(progress_reporter, console=err_console))
