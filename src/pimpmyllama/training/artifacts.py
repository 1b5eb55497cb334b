"""Writing a run's result into the store, with what made it beside it: the config,
the base model, the data hash and the metrics; then checking what was written."""

import json
import shutil
from pathlib import Path

from pimpmyllama.generation.checks import check_model_runs
from pimpmyllama.models.adapters import AdapterStore, base_fingerprint
from pimpmyllama.models.manifest import Manifest, Parent
from pimpmyllama.models.store import ModelStore


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


def write_artifact(config, base, model, tokenizer, data, metrics: dict, run_dir: Path,
                   state_dict: dict | None = None) -> Path:
    """The adapter (LoRA) or model (full) into its store, through the store's one door,
    with its manifest, loss curve and metrics; checked before it appears. `state_dict`:
    the weights to write when `model`'s own are sharded (named as in `model`)."""
    metrics_file = run_dir / "metrics.jsonl"
    if metrics_file.exists():
        plot_loss(metrics_file, run_dir / "loss.png")
    kind = "adapter" if config.method == "lora" else "model"
    manifest = Manifest(
        kind=kind, made_by="train", source=f"fine-tune of {base.name}",
        parents=[Parent(ref=base.name, path=str(base.folder), fingerprint=base_fingerprint(base.folder))],
        training={"method": config.method, "kind": config.kind, "data": [str(Path(p).resolve()) for p in config.data],
                  "data_hash": data.data_hash, "config": config.model_dump(by_alias=True, exclude={"force"}),
                  "metrics": metrics},
    )
    store = AdapterStore() if kind == "adapter" else ModelStore()
    extra_check = None if kind == "adapter" else check_model_runs
    with store.shelf.create(config.output, force=config.force, check=extra_check) as draft:
        model.save_pretrained(str(draft.folder), **({} if state_dict is None else {"state_dict": state_dict}))
        if kind == "model":
            draft.copy_tokenizer_files(base.folder)
        draft.manifest = manifest
        for name in ("metrics.jsonl", "loss.png"):
            if (run_dir / name).exists():
                shutil.copy2(run_dir / name, draft.folder / name)
    return store.shelf.entry(config.output)
