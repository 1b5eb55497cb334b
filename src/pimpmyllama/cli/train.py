"""pml train sft|pretrain"""

from pathlib import Path

import typer

from pimpmyllama.cli.app import new_app
from pimpmyllama.cli.config_options import FieldOption, config_options
from pimpmyllama.cli.console import escape, out, step_reporter
from pimpmyllama.training.config import TrainConfig

# Loaded lazily by cli/main.py (building these options needs pydantic); the group's help is there.
app = new_app(__doc__)


def _targets(value: str) -> list[str] | str:
    return "all-linear" if value == "all-linear" else [t.strip() for t in value.split(",")]


# Every TrainConfig field but `kind` (the command) and `data` (the arguments), declared
# once: help text and defaults come from the field.
TRAIN_OPTIONS = [
    FieldOption("from_", ("--from",)),
    FieldOption("output", ("--output", "-o")),
    FieldOption("force"),
    FieldOption("method", ("--full/--lora",), lambda full: "full" if full else "lora", bool,
                "full fine-tune, or a LoRA adapter [default: --lora]"),
    FieldOption("epochs"),
    FieldOption("max_steps"),
    FieldOption("learning_rate", ("--lr", "--learning-rate")),
    FieldOption("lr_scheduler", ("--scheduler", "--lr-scheduler")),
    FieldOption("warmup_ratio"),
    FieldOption("batch_size"),
    FieldOption("gradient_accumulation", ("--grad-accum", "--gradient-accumulation")),
    FieldOption("max_length"),
    FieldOption("packing"),
    FieldOption("lora_rank"),
    FieldOption("lora_alpha"),
    FieldOption("lora_dropout"),
    FieldOption("lora_targets", (), _targets, str, "comma-separated module names, or all-linear [default: all-linear]"),
    FieldOption("weight_decay"),
    FieldOption("max_grad_norm"),
    FieldOption("eval_split"),
    FieldOption("general_text", (), str, Path),
    FieldOption("seed"),
    FieldOption("save_steps"),
    FieldOption("log_steps"),
    FieldOption("device"),
]
# Pre-training's rows are blocks of the context size, so it also answers to --num-ctx.
PRETRAIN_OPTIONS = [FieldOption("max_length", ("--max-length", "--num-ctx"), help="block size, in tokens [default: 512]")
                    if o.field == "max_length" else o for o in TRAIN_OPTIONS]


def _run(kind: str, data: list[Path], config_file: Path | None, resume: bool, overrides: dict) -> None:
    from pimpmyllama.training.config import load_train_config
    from pimpmyllama.training.distributed import is_main_process
    from pimpmyllama.training.recipe import train

    overrides = {**overrides, "kind": kind}
    if data:
        overrides["data"] = [str(p) for p in data]
    config = load_train_config(config_file, overrides)
    main = is_main_process()
    with step_reporter(enabled=main) as on_step:
        result = train(config, resume=resume, on_step=on_step)
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
CONFIG = typer.Option(None, "--config", help="YAML training config; options given here override it")
RESUME = typer.Option(False, "--resume", help="continue the run of this output name from its last checkpoint")


@app.command("sft")
@config_options(TrainConfig, TRAIN_OPTIONS)
def sft(data: list[Path] = DATA, config: Path = CONFIG, resume: bool = RESUME, *, overrides: dict):
    """Supervised fine-tuning on conversations (messages, ShareGPT, Alpaca) or prompt/completion pairs."""
    _run("sft", data or [], config, resume, overrides)


@app.command("pretrain")
@config_options(TrainConfig, PRETRAIN_OPTIONS)
def pretrain(data: list[Path] = DATA, config: Path = CONFIG, resume: bool = RESUME, *, overrides: dict):
    """Continued pre-training: documents joined with the end-of-text token, cut into blocks."""
    _run("pretrain", data or [], config, resume, overrides)


@app.command("fsdp-config")
def fsdp_config():
    """Print the path of the shipped accelerate FSDP config, for
    `accelerate launch --config_file "$(pml train fsdp-config)" --num_processes N -m pimpmyllama train sft ...`."""
    from pimpmyllama.training.accelerate import fsdp_config_path

    typer.echo(str(fsdp_config_path()))  # plain: a path for the shell, never wrapped
