"""pml merge RECIPE | pml merge lora BASE ADAPTER, pml extract-lora"""

import json
from pathlib import Path

import typer
from rich.table import Table

from pimpmyllama.cli import device as device_option
from pimpmyllama.cli.console import cells, escape, out, progress_reporter
from pimpmyllama.errors import InvalidInputError


def merge(
    args: list[str] = typer.Argument(..., help="RECIPE.yml (mergekit format), or: lora BASE ADAPTER"),
    output: str = typer.Option(None, "--output", "-o", help="name of the merged model in the store"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the plan (per tensor: method, weights, densities) only"),
    seed: int = typer.Option(0, "--seed", help="seed of the random methods (dare_*, della*)"),
    as_json: bool = typer.Option(False, "--json", help="with --dry-run: the plan as JSON"),
    force: bool = typer.Option(False, "--force", help="replace a model of the same name"),
    device: str = device_option.DEVICE,
):
    """Merge models with a mergekit recipe (or bake a LoRA adapter into its base)."""
    device_option.use(device)
    if args[0] == "lora":
        if len(args) != 3:
            raise InvalidInputError("usage: pml merge lora BASE ADAPTER -o NAME")
        if not output:
            raise InvalidInputError("name the merged model with -o NAME")
        from pimpmyllama.merging.lora import merge_lora_to_store

        with progress_reporter(f"Merging {args[2]} into {args[1]}") as report:
            merge_lora_to_store(args[1], args[2], output, report, force=force)
        out.print(f"merged [bold]{escape(output)}[/] = {escape(args[1])} + {escape(args[2])}")
        return
    if len(args) != 1:
        raise InvalidInputError("give one recipe file (or: lora BASE ADAPTER)")
    recipe = Path(args[0])
    if dry_run:
        from pimpmyllama.merging.config import load_merge_config
        from pimpmyllama.merging.merge import describe_plan
        from pimpmyllama.merging.plan import build_plan

        rows = describe_plan(build_plan(load_merge_config(recipe), seed))
        if as_json:
            print(json.dumps(rows, indent=2))
            return
        table = Table("TENSOR", "T", "INPUTS (model: parameters)", box=None)
        for row in rows:
            shown = "; ".join(
                f"{i['model']}{' (base)' if i['base'] else ''}"
                + ("" if i["tensor"] == row["tensor"] else f"[{i['tensor']}]")
                + "".join(f" {k}={v}" for k, v in i.items() if k not in ("model", "tensor", "base"))
                for i in row["inputs"])
            params = " ".join(f"{k}={v}" for k, v in row["params"].items())
            table.add_row(*cells(row["tensor"], f"{row['t']:.2f}", f"{row['method']} {params} · {shown}"))
        out.print(table)
        out.print(f"{len(rows)} tensors")
        return
    if not output:
        raise InvalidInputError("name the merged model with -o NAME")
    from pimpmyllama.merging.merge import merge_to_store

    with progress_reporter(f"Merging {recipe.name}") as report:
        merge_to_store(recipe, output, seed=seed, progress=report, force=force)
    shown = escape(output)
    out.print(f"merged [bold]{shown}[/] (use it with `from: {shown}` in a build, or `pml chat {shown}`)")


def extract_lora(
    tuned: str = typer.Argument(..., help="the fine-tuned model"),
    base: str = typer.Option(..., "--base", help="the model it was fine-tuned from"),
    rank: int = typer.Option(16, "--rank", help="LoRA rank"),
    output: str = typer.Option(None, "--output", "-o", help="adapter name (default: TUNED-lora)"),
    force: bool = typer.Option(False, "--force", help="replace an adapter of the same name"),
    device: str = device_option.DEVICE,
):
    """Extract a LoRA adapter from a fine-tune: the difference from its base, by SVD."""
    device_option.use(device)
    from pimpmyllama.merging.lora import extract_lora as run

    with progress_reporter(f"Extracting {tuned}") as report:
        result = run(tuned, base, rank, output or f"{tuned}-lora", report, force=force)
    whole = f"; stored whole: {escape(', '.join(result.whole_tensors))}" if result.whole_tensors else ""
    out.print(f"extracted adapter [bold]{escape(result.name)}[/]: rank {result.rank} on {result.modules} layers, "
              f"mean relative error {result.relative_error:.4f}{whole}")
