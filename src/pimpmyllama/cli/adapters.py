"""pml adapters list|show|rm, pml export"""

import json
from pathlib import Path

import typer
from rich.table import Table

from pimpmyllama.cli.app import new_app
from pimpmyllama.cli.console import cells, escape, human_size, out, progress_reporter

app = new_app("Manage LoRA adapters (the results of `pml train --lora`).")


@app.command("list")
def list_():
    """List adapters with their base model."""
    from pimpmyllama.models.adapters import AdapterStore

    store = AdapterStore()
    table = Table("NAME", "BASE", "RANK", "STEPS", "CREATED", box=None)
    for name in store.names():
        meta = store.meta(name)
        config = meta.get("config", {})
        table.add_row(*cells(name, meta.get("base", "?"), config.get("lora_rank", "?"),
                             meta.get("metrics", {}).get("steps", "?"), meta.get("created_at", "?")))
    out.print(table)


@app.command("show")
def show(name: str = typer.Argument(..., help="adapter name")):
    """What made an adapter: base, data, settings, metrics."""
    from pimpmyllama.models.adapters import AdapterStore

    store = AdapterStore()
    folder = store.folder(name)
    meta = store.meta(name)
    size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
    out.print(f"[bold]{escape(name)}[/] · base {escape(str(meta.get('base', '?')))} · {human_size(size)} · "
              f"{escape(str(folder))}")
    out.print_json(json.dumps({k: meta.get(k) for k in ("data", "data_hash", "config", "metrics", "created_at")}))


@app.command("rm")
def rm(name: str = typer.Argument(..., help="adapter name")):
    """Remove an adapter."""
    from pimpmyllama.models.adapters import AdapterStore

    AdapterStore().remove(name)
    out.print(f"removed {name}", markup=False)


def export(
    name: str = typer.Argument(..., help="an adapter (merged into its base) or a store model"),
    output: Path = typer.Option(..., "--output", "-o", help="folder to write the standalone model into"),
    base: str = typer.Option(None, "--base", help="base model for the adapter (default: the one it was trained on)"),
):
    """Write a standalone Hugging Face model: an adapter merged into its base weights."""
    from pimpmyllama.models.export import export_model

    with progress_reporter(f"Exporting {name}") as report:
        path = export_model(name, output, base=base, progress=report)
    out.print(f"wrote {path}", markup=False)
