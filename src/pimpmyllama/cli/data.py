"""pml data check, pml eval ppl"""

from pathlib import Path

import typer

from pimpmyllama.cli import device as device_option
from pimpmyllama.cli.app import new_app
from pimpmyllama.cli.console import err, out, progress_reporter
from pimpmyllama.config_files import validate
from pimpmyllama.errors import InvalidInputError
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
    model: str = typer.Argument(..., help="store model or folder (with --num-ctx: or a build)"),
    files: list[Path] = typer.Argument(..., help="text files, or datasets (their answers are scored)"),
    adapter: str = typer.Option(None, "--adapter", help="apply this LoRA adapter first"),
    max_length: int = typer.Option(512, "--max-length", help="tokens per window"),
    num_ctx: int = typer.Option(None, "--num-ctx", min=2, help="score non-overlapping windows of this many tokens "
                                "on our engine (long contexts; the build's rope scaling and precision apply)"),
    rope_scaling: str = typer.Option(None, "--rope-scaling", help="with --num-ctx: linear, dynamic or yarn"),
    rope_factor: float = typer.Option(None, "--rope-factor", help="with --rope-scaling: the factor (≥ 1)"),
    precision: str = typer.Option(None, "--precision", help="with --num-ctx: fp32, bf16, int8 or int4"),
    windows: int = typer.Option(None, "--windows", min=1, help="with --num-ctx: score only the first N windows"),
    device: str = device_option.DEVICE,
):
    """Perplexity of a model on some text: lower means the text is less surprising to it."""
    device_option.use(device)
    if num_ctx is not None:
        return _window_ppl(model, files, adapter, num_ctx, rope_scaling, rope_factor, precision, windows)
    if rope_scaling or rope_factor or precision or windows:
        raise InvalidInputError("--rope-scaling, --rope-factor, --precision and --windows need --num-ctx")
    from pimpmyllama.training.perplexity import model_perplexity

    value, tokens = model_perplexity(model, files, adapter=adapter, max_length=max_length)
    out.print(f"perplexity {value:.3f} over {tokens} tokens")


def _window_ppl(model, files, adapter, num_ctx, rope_type, rope_factor, precision, windows) -> None:
    from pimpmyllama.evaluation.long_perplexity import plan_window_perplexity, window_perplexity
    from pimpmyllama.prompting.build import RopeScaling

    if (rope_type is None) != (rope_factor is None):
        raise InvalidInputError("--rope-scaling and --rope-factor go together")
    scaling = None
    if rope_type is not None:
        scaling = validate(RopeScaling, {"type": rope_type, "factor": rope_factor}, "--rope-scaling")
    plan = plan_window_perplexity(f"{model}+{adapter}" if adapter else model, num_ctx, scaling, precision)
    err.print(plan.kv_cache.describe(), markup=False, soft_wrap=True)
    with progress_reporter("Scoring") as report:
        result = window_perplexity(plan, files, windows, lambda done, total: report("windows", done, total))
    rope = plan.build.parameters.rope_scaling
    how = f"rope {rope.type} × {rope.factor:g}" if rope else "no rope scaling"
    out.print(f"perplexity {result.perplexity:.3f} over {result.tokens} tokens ({result.windows} windows of "
              f"{num_ctx}, {how})")
