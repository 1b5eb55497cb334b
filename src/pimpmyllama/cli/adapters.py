"""pml adapters list|show|rm, pml export"""

from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from pimpmyllama.cli.app import new_app
from pimpmyllama.cli.console import human_size, out, progress_reporter
from pimpmyllama.errors import PmlError

app = new_app("Manage LoRA adapters (the results of `pml train --lora`).")


@app.command("list")
def list_():
    """List adapters with their base model."""
    from pimpmyllama.models.adapters import AdapterStore

    store = AdapterStore()
    table = Table("NAME", "BASE", "RANK", "STEPS", "CREATED", box=None)
    for name in store.names():
        try:
            meta = store.meta(name)
        except PmlError as exc:
            table.add_row(Text(name), Text(f"unreadable: {exc}"), "?", "?", "?")
            continue
        training = (meta.training if meta else None) or {}
        rank = training.get("config", {}).get("lora_rank") or (meta.extraction or {}).get("rank") if meta else None
        table.add_row(Text(name), Text(meta.base.ref if meta and meta.base else "?"), str(rank or "?"),
                      str(training.get("metrics", {}).get("steps", "?")), meta.created_at if meta else "?")
    out.print(table)


@app.command("show")
def show(name: str = typer.Argument(..., help="adapter name")):
    """What made an adapter: base, data, settings, metrics."""
    from pimpmyllama.models.adapters import AdapterStore

    store = AdapterStore()
    folder = store.folder(name)
    meta = store.meta(name)
    size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
    base = meta.base.ref if meta and meta.base else "?"
    out.print(Text(f"{name} · base {base} · {human_size(size)} · {folder}"))
    out.print_json(meta.model_dump_json(exclude_none=True) if meta else "{}")


@app.command("rm")
def rm(name: str = typer.Argument(..., help="adapter name")):
    """Remove an adapter."""
    from pimpmyllama.models.adapters import AdapterStore

    AdapterStore().remove(name)
    out.print(Text(f"removed {name}"))


def export(
    name: str = typer.Argument(..., help="a model, MODEL+ADAPTER, a build, or an adapter (merged into its base)"),
    output: Path = typer.Option(..., "--output", "-o", help="folder (hf, ollama) or file (gguf, gguf-lora) to write"),
    base: str = typer.Option(None, "--base", help="base model for the adapter (default: the one it was trained on)"),
    format: str = typer.Option("hf", "--format", help="hf: a Hugging Face folder; gguf: one GGUF file for "
                               "llama.cpp; ollama: a folder with the GGUF and a Modelfile of the build; "
                               "gguf-lora: the adapter as a GGUF LoRA (llama.cpp --lora)"),
    quant: str = typer.Option(None, "--quant", help="GGUF tensor type: f16 (default), f32, q8_0 or q4_1"),
):
    """Write a model, MODEL+ADAPTER or build for Hugging Face, llama.cpp (GGUF) or Ollama."""
    from pimpmyllama.merging.export import export_model

    with progress_reporter(f"Exporting {name}") as report:
        path = export_model(name, output, base=base, progress=report, format=format, quant=quant)
    out.print(f"wrote {path}", markup=False)
