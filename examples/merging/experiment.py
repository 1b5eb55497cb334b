"""The seed experiment: fine-tune, then merge the fine-tune back with its base.

A LoRA fine-tune of the default model learns a domain (filling a JSON form), and
may forget some of what it knew. Merging it with its base at a few weights, by
task arithmetic (base + w·(fine-tune − base)) and by SLERP, trades one against the
other. For the base, the fine-tune and each merge, this prints the perplexity on
held-out examples of the domain and on a general English text (CPython's
LICENSE.txt, the history of Python in prose), and the share of the domain gain
kept and of the general loss paid, relative to the fine-tune.

    python examples/merging/experiment.py [--train 380] [--weights 0.25,0.5,0.75]

Everything lands in $PML_HOME (default ~/.pimpmyllama): the adapter `form-lora`
and the models `form-ta-0.5`, `form-slerp-0.5`, ...; remove them with
`pml adapters rm` and `pml models rm`.
"""

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

FORM = Path(__file__).parents[1] / "datasets" / "json_form.jsonl"


@dataclass
class Row:
    model: str
    domain: float
    general: float


def split(work: Path, held: int, train_size: int) -> tuple[Path, Path]:
    rows = FORM.read_text().splitlines()
    held_out, train = work / "held-out.jsonl", work / "train.jsonl"
    held_out.write_text("\n".join(rows[:held]) + "\n")
    train.write_text("\n".join(rows[held : held + train_size]) + "\n")
    return train, held_out


def general_text(work: Path, chars: int | None) -> Path:
    from pimpmyllama.training.perplexity import default_general_text

    text = default_general_text().read_text(encoding="utf-8", errors="replace")
    path = work / "general.txt"
    path.write_text(text[:chars] if chars else text)
    return path


def recipe(method: str, weight: float, base: str, tuned: str) -> dict:
    if method == "task_arithmetic":
        return {"merge_method": "task_arithmetic", "base_model": base,
                "models": [{"model": tuned, "parameters": {"weight": weight}}]}
    return {"merge_method": "slerp", "base_model": base, "parameters": {"t": weight},
            "models": [{"model": base}, {"model": tuned}]}


def run(work: Path, *, train_size: int = 380, held: int = 20, weights=(0.25, 0.5, 0.75),
        methods=("task_arithmetic", "slerp"), general_chars: int | None = None, adapter: str = "form-lora",
        learning_rate: float = 1e-3, epochs: float = 2.0, prefix: str = "form") -> list[Row]:
    import yaml

    from pimpmyllama.merging.merge import merge_to_store
    from pimpmyllama.models.defaults import DEFAULT_MODEL
    from pimpmyllama.models.store import ModelStore
    from pimpmyllama.training.config import TrainConfig
    from pimpmyllama.training.perplexity import model_perplexity
    from pimpmyllama.training.recipe import train

    work.mkdir(parents=True, exist_ok=True)
    train_file, held_out = split(work, held, train_size)
    general = general_text(work, general_chars)
    ModelStore().folder(DEFAULT_MODEL)  # imports the bundled default on first use
    train(TrainConfig.model_validate({"data": [str(train_file)], "output": adapter, "epochs": epochs,
                                      "learning_rate": learning_rate, "eval_split": 0.0, "save_steps": 10_000,
                                      "general_text": str(general)}))

    def measure(label: str, model: str, with_adapter: str | None = None) -> Row:
        domain, _ = model_perplexity(model, [held_out], adapter=with_adapter)
        general_ppl, _ = model_perplexity(model, [general], adapter=with_adapter)
        return Row(label, domain, general_ppl)

    rows = [measure("base", DEFAULT_MODEL), measure("fine-tune", DEFAULT_MODEL, adapter)]
    tuned = f"{DEFAULT_MODEL}+{adapter}"
    for method in methods:
        for weight in weights:
            name = f"{prefix}-{'ta' if method == 'task_arithmetic' else 'slerp'}-{weight:g}"
            path = work / f"{name}.yml"
            path.write_text(yaml.safe_dump(recipe(method, weight, DEFAULT_MODEL, tuned)))
            if ModelStore().exists(name):
                ModelStore().remove(name)
            merge_to_store(path, name)
            rows.append(measure(f"{method} {weight:g}", name))
    return rows


def table(rows: list[Row]) -> str:
    base, tuned = rows[0], rows[1]
    gain = math.log(base.domain) - math.log(tuned.domain)
    loss = math.log(tuned.general) - math.log(base.general)
    lines = [f"{'model':<22} {'domain ppl':>10} {'general ppl':>11} {'domain gain kept':>17} {'general loss paid':>18}"]
    for r in rows:
        kept = (math.log(base.domain) - math.log(r.domain)) / gain if gain else float("nan")
        paid = (math.log(r.general) - math.log(base.general)) / loss if loss else float("nan")
        lines.append(f"{r.model:<22} {r.domain:>10.3f} {r.general:>11.3f} {kept:>16.0%} {paid:>17.0%}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=380, help="training examples")
    parser.add_argument("--weights", default="0.25,0.5,0.75")
    parser.add_argument("--work", type=Path, default=Path("merge-experiment"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = run(args.work, train_size=args.train, weights=[float(w) for w in args.weights.split(",")])
    print(json.dumps([r.__dict__ for r in rows], indent=2) if args.json else table(rows))


if __name__ == "__main__":
    main()
