"""pml models import|list|show|rm"""

import json
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from pimpmyllama.cli.app import new_app
from pimpmyllama.cli.console import cells, human_count, human_size, out, progress_reporter

app = new_app("Manage the model store (imported models).")


@app.command("import")
def import_(
    path: Path = typer.Argument(..., help="a Hugging Face model folder (safetensors) or a .gguf file"),
    name: str = typer.Option(None, "--name", "-n", help="store name (default: from the file or folder name)"),
    force: bool = typer.Option(False, "--force", help="replace a model of the same name"),
):
    """Import a model into the store (a GGUF is dequantized once, to safetensors)."""
    from pimpmyllama.api import import_model

    with progress_reporter(f"Importing {path.name}") as report:
        stored = import_model(path, name, force=force, progress=report)
    out.print(Text(f"imported {stored}"))


@app.command("list")
def list_():
    """List the stored models."""
    from pimpmyllama.models.store import ModelStore

    table = Table("NAME", "ARCH", "PARAMS", "CONTEXT", "SIZE", "IMPORTED", box=None)
    for row in ModelStore().listing():
        info = row.info
        if info is None:
            table.add_row(Text(row.name), Text(f"not usable: {row.problem}", style="yellow"), "", "", "", "")
            continue
        table.add_row(Text(row.name), Text(info.architecture), human_count(info.parameters),
                      str(info.context_length), human_size(info.size_bytes), info.imported_at)
    out.print(table)


@app.command("show")
def show(
    name: str = typer.Argument(..., help="store name"),
    as_json: bool = typer.Option(False, "--json", help="print as JSON"),
):
    """Architecture, parameters, context length, chat template and size of a model."""
    from pimpmyllama.models.store import ModelStore

    info = ModelStore().info(name)
    if as_json:
        out.print_json(json.dumps(info.as_dict()))
        return
    rows = [
        ("name", info.name),
        ("architecture", info.architecture),
        ("parameters", f"{human_count(info.parameters)} ({info.parameters:,})"),
        ("context length", str(info.context_length)),
        ("chat template", "yes" if info.has_chat_template else "no"),
        ("size on disk", human_size(info.size_bytes)),
        ("source", info.source),
        ("imported", info.imported_at),
        ("path", str(info.path)),
    ]
    table = Table(show_header=False, box=None)
    for key, value in rows:
        table.add_row(*cells(key, value))
    out.print(table)


@app.command("rm")
def rm(name: str = typer.Argument(..., help="store name")):
    """Remove a model from the store."""
    from pimpmyllama.models.store import ModelStore

    ModelStore().remove(name)
    out.print(Text(f"removed {name}"))
