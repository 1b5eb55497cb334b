"""pml data check, pml eval ppl"""

from pathlib import Path

import typer

from pimpmyllama.cli.app import new_app
from pimpmyllama.cli.console import out
from pimpmyllama.models.defaults import DEFAULT_MODEL

data_app = new_app("Inspect training data.")
eval_app = new_app("Measure models.")


@data_app.command("check")
def check(
    files: list[Path] = typer.Argument(..., help="data files"),
    model: str = typer.Option(DEFAULT_MODEL, "--model", help="model (or build) whose tokenizer and template count"),
    max_length: int = typer.Option(512, "--max-length", help="the training max_length to check against"),
):
    """Detected format, counts, token lengths, and how many examples would be dropped."""
    from pimpmyllama.prompting.format import ChatFormat
    from pimpmyllama.prompting.tokenizer import Tokenizer
    from pimpmyllama.training.inspect import inspect_data
    from pimpmyllama.training.recipe import resolve_base

    base = resolve_base(model)
    report = inspect_data(files, ChatFormat(Tokenizer(base.folder), base.template, model_name=base.name), max_length)
    lengths = sorted(report.lengths)
    total = sum(lengths)
    out.print(f"format [bold]{report.format}[/] · {report.examples} examples · {total} tokens · "
              f"{report.trained} trained ({100 * report.trained / max(total, 1):.0f}%)")
    out.print(f"tokens per example: min {lengths[0]}, median {lengths[len(lengths) // 2]}, "
              f"p95 {lengths[int(len(lengths) * 0.95) - 1 if len(lengths) > 1 else 0]}, max {lengths[-1]}")
    peak = max(c for _, _, c in report.histogram()) or 1
    for low, high, count in report.histogram():
        out.print(f"  {low:>6}–{high:<6} {'█' * round(30 * count / peak):<30} {count}")
    verdict = "[green]none[/]" if not report.too_long else f"[yellow]{report.too_long}[/]"
    out.print(f"longer than max_length {max_length} (dropped at training): {verdict}")


@eval_app.command("ppl")
def ppl(
    model: str = typer.Argument(..., help="store model or folder"),
    files: list[Path] = typer.Argument(..., help="text files, or datasets (their answers are scored)"),
    adapter: str = typer.Option(None, "--adapter", help="apply this LoRA adapter first"),
    max_length: int = typer.Option(512, "--max-length", help="tokens per window"),
):
    """Perplexity of a model on some text: lower means the text is less surprising to it."""
    from pimpmyllama.training.perplexity import model_perplexity

    value, tokens = model_perplexity(model, files, adapter=adapter, max_length=max_length)
    out.print(f"perplexity {value:.3f} over {tokens} tokens")
