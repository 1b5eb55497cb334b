"""pml compare SPEC.yml [-o DIR]"""

from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from pimpmyllama.cli import device as device_option
from pimpmyllama.cli.console import cells, err, escape, out


def compare(
    spec: Path = typer.Argument(..., help="the compare spec (YAML): variants, questions, texts"),
    output: Path = typer.Option(None, "--output", "-o", help="output folder (default: compare-SPEC in the "
                                                             "current folder)"),
    device: str = device_option.DEVICE,
):
    """Ask the same questions of several variants (prompted, with knowledge, fine-tuned,
    merged...) and report who does what: report.html, report.md, results.jsonl."""
    device_option.use(device)
    from pimpmyllama.api import compare as run
    from pimpmyllama.evaluation.runner import default_output

    out_dir = output or default_output(spec)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                   TextColumn("{task.completed}/{task.total}"), TimeRemainingColumn(), console=err, transient=True)
    task = bar.add_task("compare", total=None)

    def report(stage: str, completed: int, total: int | None) -> None:
        if not bar.live.is_started:
            bar.start()
        bar.update(task, description=escape(stage), completed=completed, total=total)

    try:
        results = run(spec, out_dir, progress=report)
    except KeyboardInterrupt:
        bar.stop()
        err.print(f"interrupted: the partial report is in {escape(str(out_dir))} (run again to complete it)")
        raise typer.Exit(130) from None
    finally:
        if bar.live.is_started:
            bar.stop()
    table = Table("VARIANT", "LEVERS", "PASS", "95% INTERVAL", "STOP", "TOKENS", "TOK/S", box=None)
    from pimpmyllama.evaluation.report import interval, number, percent

    for v in results.variants:
        table.add_row(*cells(v.name, " + ".join(v.levers) or "base", percent(v.pass_rate), interval(v.interval),
                             percent(v.stop_rate), number(v.mean_reply_tokens), number(v.tokens_per_s)))
    out.print(table)
    out.print(f"report: {escape(str(out_dir / 'report.html'))}")
