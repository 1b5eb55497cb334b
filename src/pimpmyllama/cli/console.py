"""Terminal output: the consoles, progress bars and shared renderings."""

import sys
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

# What a user wrote (names, prompts, paths, messages) is printed as text, never read
# as rich markup: interpolate it through `escape`, print it with markup=False, or put
# it in a table through `cells`.


def cells(*values) -> list[Text]:
    """Table cells shown as typed: brackets in them are text."""
    return [Text(str(v)) for v in values]


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def human_count(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


@contextmanager
def progress_reporter(title: str, console: Console | None = None):
    """A progress callback (stage, completed, total) drawn as one rich bar on stderr (or `console`)."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console or err,
        transient=True,
    ) as progress:
        task = progress.add_task(escape(title), total=None)

        def report(stage: str, completed: int, total: int | None) -> None:
            progress.update(task, description=escape(f"{title}: {stage}"), completed=completed, total=total)

        yield report


@contextmanager
def step_reporter(enabled: bool = True):
    """A training run's `on_step` callback (a `StepReport` per optimizer step) drawn as
    one bar on stderr. The bar appears with the first step, so setup errors stay one
    clean line; `enabled=False` (the non-main processes of a distributed run) draws nothing."""
    columns = [TextColumn("step {task.completed}/{task.total}"), BarColumn(),
               TextColumn("loss {task.fields[loss]:.4f} · {task.fields[tps]:.0f} tok/s"), TimeRemainingColumn()]
    bar = Progress(*columns, console=err, transient=False, disable=not enabled)
    task = bar.add_task("train", total=None, loss=float("nan"), tps=0.0)

    def on_step(report) -> None:
        if not bar.live.is_started:
            bar.start()
        bar.update(task, completed=report.step, total=report.total_steps, loss=report.loss,
                   tps=report.trained_tokens_per_second)

    try:
        yield on_step
    finally:
        if bar.live.is_started:
            bar.stop()


def read_stdin() -> str:
    """All of stdin as text; bytes that are not UTF-8 come back as lone surrogates
    (Python's surrogateescape), for `check_text` to refuse by name."""
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:
        return sys.stdin.read()
    return stream.read().decode("utf-8", "surrogateescape")


def write_stream(text: str) -> None:
    """Streamed reply text goes out raw: it may hold brackets rich would read as markup."""
    sys.stdout.write(text)
    sys.stdout.flush()
