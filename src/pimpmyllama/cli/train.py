"""pml train sft|pretrain"""

from pathlib import Path

import typer

from pimpmyllama.cli.app import new_app
from pimpmyllama.cli.console import err, escape, out

app = new_app("Fine-tune a model: supervised (chat or completion data) or continued pre-training (text).")


def _options(**kwargs) -> dict:
    return {k: v for k, v in kwargs.items() if v is not None}


def _run(kind: str, data: list[Path], config_file: Path | None, resume: bool, overrides: dict) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from pimpmyllama.training.config import load_train_config
    from pimpmyllama.training.distributed import Distributed
    from pimpmyllama.training.recipe import train

    overrides = {**overrides, "kind": kind}
    if data:
        overrides["data"] = [str(p) for p in data]
    config = load_train_config(config_file, overrides)
    main = Distributed.from_env().is_main
    columns = [TextColumn("step {task.completed}/{task.total}"), BarColumn(),
               TextColumn("loss {task.fields[loss]:.4f} · {task.fields[tps]:.0f} tok/s"), TimeRemainingColumn()]
    # The bar appears with the first step: setup errors stay one clean line.
    bar = Progress(*columns, console=err, transient=False, disable=not main)
    task = bar.add_task("train", total=None, loss=float("nan"), tps=0.0)

    def report(m: dict) -> None:
        if not bar.live.is_started:
            bar.start()
        bar.update(task, completed=m["step"], total=m["total_steps"], loss=m["loss"],
                   tps=m["trained_tokens_per_second"])

    try:
        result = train(config, resume=resume, progress=report)
    finally:
        if bar.live.is_started:
            bar.stop()
    if not main:
        return
    m = result.metrics
    b, a = m["before"], m["after"]

    def fmt(x):
        return "n/a" if x is None else f"{x:.2f}"

    if m["dropped_too_long"]:
        out.print(f"[yellow]{m['dropped_too_long']} examples longer than max_length were dropped[/]")
    out.print(f"trained {result.kind} [bold]{escape(str(result.output))}[/] in {result.steps} steps on {m['examples']} examples")
    out.print(f"perplexity: domain: {fmt(b['domain'])} → {fmt(a['domain'])}, general: {fmt(b['general'])} → "
              f"{fmt(a['general'])}")
    out.print(f"[dim]run folder: {escape(str(result.run_dir))}[/]")


DATA = typer.Argument(None, help="data files (JSONL, JSON, CSV, Parquet; .txt/.md for pretrain)")
FROM = typer.Option(None, "--from", help="base model or build (default: the bundled model)")
OUTPUT = typer.Option(None, "--output", "-o", help="name of the result in the store")
CONFIG = typer.Option(None, "--config", help="YAML training config; options given here override it")
RESUME = typer.Option(False, "--resume", help="continue the run of this output name from its last checkpoint")


@app.command("sft")
def sft(
    data: list[Path] = DATA,
    from_: str = FROM,
    output: str = OUTPUT,
    full: bool = typer.Option(None, "--full/--lora", help="full fine-tune, or a LoRA adapter (default)"),
    epochs: float = typer.Option(None, "--epochs"),
    max_steps: int = typer.Option(None, "--max-steps"),
    lr: float = typer.Option(None, "--lr", help="peak learning rate (LoRA 2e-4, full 2e-5)"),
    scheduler: str = typer.Option(None, "--scheduler", help="cosine, linear or constant"),
    warmup_ratio: float = typer.Option(None, "--warmup-ratio"),
    batch_size: int = typer.Option(None, "--batch-size", help="rows per micro-batch, per process"),
    grad_accum: int = typer.Option(None, "--grad-accum"),
    max_length: int = typer.Option(None, "--max-length", help="tokens per row; longer examples are dropped"),
    packing: bool = typer.Option(None, "--packing/--no-packing"),
    lora_rank: int = typer.Option(None, "--lora-rank"),
    lora_alpha: int = typer.Option(None, "--lora-alpha"),
    lora_dropout: float = typer.Option(None, "--lora-dropout"),
    lora_targets: str = typer.Option(None, "--lora-targets", help="comma-separated module names, or all-linear"),
    eval_split: float = typer.Option(None, "--eval-split"),
    general_text: Path = typer.Option(None, "--general-text", help="reference text for what the model may forget"),
    seed: int = typer.Option(None, "--seed"),
    save_steps: int = typer.Option(None, "--save-steps"),
    config: Path = CONFIG,
    resume: bool = RESUME,
):
    """Supervised fine-tuning on conversations (messages, ShareGPT, Alpaca) or prompt/completion pairs."""
    targets = None
    if lora_targets:
        targets = "all-linear" if lora_targets == "all-linear" else [t.strip() for t in lora_targets.split(",")]
    _run("sft", data or [], config, resume, _options(
        **{"from": from_}, output=output, method=None if full is None else ("full" if full else "lora"),
        epochs=epochs, max_steps=max_steps, learning_rate=lr, lr_scheduler=scheduler, warmup_ratio=warmup_ratio,
        batch_size=batch_size, gradient_accumulation=grad_accum, max_length=max_length, packing=packing,
        lora_rank=lora_rank, lora_alpha=lora_alpha, lora_dropout=lora_dropout, lora_targets=targets,
        eval_split=eval_split, general_text=str(general_text) if general_text else None, seed=seed,
        save_steps=save_steps))


@app.command("pretrain")
def pretrain(
    data: list[Path] = DATA,
    from_: str = FROM,
    output: str = OUTPUT,
    full: bool = typer.Option(None, "--full/--lora", help="full fine-tune, or a LoRA adapter (default)"),
    epochs: float = typer.Option(None, "--epochs"),
    max_steps: int = typer.Option(None, "--max-steps"),
    lr: float = typer.Option(None, "--lr"),
    batch_size: int = typer.Option(None, "--batch-size"),
    grad_accum: int = typer.Option(None, "--grad-accum"),
    max_length: int = typer.Option(None, "--max-length", "--num-ctx", help="block size, in tokens"),
    eval_split: float = typer.Option(None, "--eval-split"),
    general_text: Path = typer.Option(None, "--general-text"),
    seed: int = typer.Option(None, "--seed"),
    save_steps: int = typer.Option(None, "--save-steps"),
    config: Path = CONFIG,
    resume: bool = RESUME,
):
    """Continued pre-training: documents joined with the end-of-text token, cut into blocks."""
    _run("pretrain", data or [], config, resume, _options(
        **{"from": from_}, output=output, method=None if full is None else ("full" if full else "lora"),
        epochs=epochs, max_steps=max_steps, learning_rate=lr, batch_size=batch_size,
        gradient_accumulation=grad_accum, max_length=max_length, eval_split=eval_split,
        general_text=str(general_text) if general_text else None, seed=seed, save_steps=save_steps))
