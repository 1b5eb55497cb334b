"""pml sessions list|show|rm|export"""

from pathlib import Path

import typer
from rich.table import Table

from pimpmyllama.cli.app import new_app
from pimpmyllama.cli.console import cells, escape, out

app = new_app("Manage chat sessions.")


def _store():
    from pimpmyllama.memory.sessions import SessionStore
    from pimpmyllama.storage.db import open_database

    return SessionStore(open_database())


@app.command("list")
def list_():
    """List sessions, most recent first."""
    table = Table("NAME", "BUILD", "TURNS", "UPDATED", box=None)
    for row in _store().summaries():
        table.add_row(*cells(row.name, row.build or "-", row.turns, row.updated_at))
    out.print(table)


@app.command("show")
def show(name: str = typer.Argument(..., help="session name")):
    """Print a session's conversation."""
    store = _store()
    session = store.get(name)
    out.print(f"[bold]{escape(session.name)}[/] · build {escape(session.build or '-')} · {session.created_at}")
    if session.system is not None:
        out.print(f"[dim]system:[/] {escape(session.system)}")
    for pin in store.pins(session):
        out.print(f"[dim]pinned:[/] {escape(pin.text)}")
    for turn in store.turns(session):
        evicted = " [dim](left the window)[/]" if turn.index < session.window_start else ""
        interrupted = " [yellow](interrupted)[/]" if turn.status == "interrupted" else ""
        out.print(f"\n[bold cyan]#{turn.index} user[/]{evicted}")
        out.print(turn.user, markup=False)
        out.print(f"[bold green]#{turn.index} assistant[/]{interrupted}")
        out.print(turn.reply, markup=False)


@app.command("rm")
def rm(name: str = typer.Argument(..., help="session name")):
    """Remove a session and its turns."""
    _store().remove(name)
    out.print(f"removed {name}", markup=False)


@app.command("export")
def export(
    name: str = typer.Argument(..., help="session name"),
    fmt: str = typer.Option("json", "--format", help="json or markdown"),
    output: Path = typer.Option(None, "--output", "-o", help="write to this file instead of stdout"),
):
    """Export a session as JSON or Markdown."""
    from pimpmyllama.atomic import write_text_atomic

    text = _store().export(name, fmt)
    if output:
        write_text_atomic(output, text + "\n")
        out.print(f"wrote {output}", markup=False)
    else:
        print(text)
