"""Writing a run's result into the store, with what made it beside it: the config,
the base model, the data hash and the metrics; then checking what was written."""

import json
from datetime import datetime, timezone
from pathlib import Path

import torch

from pimpmyllama.atomic import atomic_dir
from pimpmyllama.errors import InvalidInputError


def plot_loss(metrics_file: Path, target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics_file.read_text().splitlines() if line.strip()]
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows])
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (per trained token)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(target, dpi=100)
    plt.close(fig)


def write_artifact(config, base, model, tokenizer, data, metrics: dict, run_dir: Path) -> Path:
    from pimpmyllama.models.adapters import META, AdapterStore, base_fingerprint
    from pimpmyllama.models.store import ModelStore, check_name

    name = check_name(config.output, "output")
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    about = {
        "base": base.name,
        "base_path": str(base.folder),
        "base_fingerprint": base_fingerprint(base.folder),
        "method": config.method,
        "kind": config.kind,
        "data": [str(Path(p).resolve()) for p in config.data],
        "data_hash": data.data_hash,
        "config": config.model_dump(by_alias=True),
        "metrics": metrics,
        "created_at": created,
    }
    metrics_file = run_dir / "metrics.jsonl"
    if metrics_file.exists():
        plot_loss(metrics_file, run_dir / "loss.png")
    if config.method == "lora":
        store = AdapterStore()
        target = store.root / name
        with atomic_dir(target, replace=True) as tmp:
            model.save_pretrained(str(tmp))
            (tmp / META).write_text(json.dumps(about, indent=2))
            _copy_run_files(run_dir, tmp)
            check_adapter_files(tmp)
        return target
    store = ModelStore()
    target = store.root / name
    with atomic_dir(target, replace=True) as tmp:
        model.save_pretrained(str(tmp))
        for file in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json",
                     "special_tokens_map.json"):
            if (base.folder / file).exists():
                (tmp / file).write_bytes((base.folder / file).read_bytes())
        (tmp / "pml-model.json").write_text(json.dumps({"source": f"fine-tune of {base.name}", "format": "hf",
                                                         "imported_at": created, **about}, indent=2))
        _copy_run_files(run_dir, tmp)
        from pimpmyllama.models.importing import verify_model_folder

        verify_model_folder(tmp)
    return target


def _copy_run_files(run_dir: Path, target: Path) -> None:
    for name in ("metrics.jsonl", "loss.png"):
        if (run_dir / name).exists():
            (target / name).write_bytes((run_dir / name).read_bytes())


def check_adapter_files(folder: Path) -> None:
    """Every LoRA tensor present, finite, and paired."""
    from pimpmyllama.models.adapters import read_adapter

    deltas, replacements = read_adapter(folder)
    for name, delta in {**deltas, **replacements}.items():
        if not torch.isfinite(delta).all():
            raise InvalidInputError(f"the adapter's update for {name} holds NaN or infinite values")
