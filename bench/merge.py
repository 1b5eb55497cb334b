"""Merging time and memory: `pml merge` against mergekit's `mergekit-yaml`, on the same
recipes and models, in one run.

The models are the bundled default (SmolLM2-135M-Instruct, fp32, 540 MB) and two
"fine-tunes" of it (the base plus seeded small changes to every tensor), written once
under bench/out. Each tool runs each recipe in its own process; wall time and the
process's peak RSS are measured from outside. `pml merge` also checks its output
(every tensor finite, the model loads and generates), which mergekit does not; that
is inside our time.

    python bench/merge.py [--recipes linear,slerp,task_arithmetic,ties,dare_ties] [--repeat 1]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).parents[1]
OUT = ROOT / "bench" / "out" / "merge"
VENV_BIN = Path(sys.executable).parent

MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
elapsed = time.perf_counter() - start
if code.returncode:
    sys.exit(code.stderr[-2000:])
print(elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
"""


def measured(command: list[str], env: dict) -> tuple[float, float]:
    result = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True, text=True, env=env)
    if result.returncode:
        raise SystemExit(f"{command[0]} failed:\n{result.stderr}")
    seconds, mb = result.stdout.split()
    return float(seconds), float(mb)


def prepare_models(env: dict) -> list[Path]:
    """The default model's folder, and two perturbed copies of it."""
    import torch
    from safetensors.torch import load_file, save_file

    subprocess.run([str(VENV_BIN / "pml"), "models", "show", "smollm2-135m-instruct"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    base = Path(env["PML_HOME"]) / "models" / "smollm2-135m-instruct"
    folders = [base]
    for seed in (1, 2):
        folder = OUT / f"tuned{seed}"
        folders.append(folder)
        if (folder / "model.safetensors").exists():
            continue
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(base, tmp)
        tensors = load_file(str(base / "model.safetensors"))
        generator = torch.Generator().manual_seed(seed)
        for name, t in tensors.items():
            tensors[name] = t + 0.1 * t.std() * torch.randn(t.shape, generator=generator)
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        tmp.rename(folder)
    return folders


def recipes(base: Path, a: Path, b: Path) -> dict[str, dict]:
    two = [{"model": str(a), "parameters": {"weight": 0.5}}, {"model": str(b), "parameters": {"weight": 0.5}}]
    dense = [{**m, "parameters": {**m["parameters"], "density": 0.5}} for m in two]
    return {
        "linear": {"merge_method": "linear", "models": two},
        "slerp": {"merge_method": "slerp", "base_model": str(base), "parameters": {"t": [0, 0.5, 1]},
                  "models": [{"model": str(base)}, {"model": str(a)}]},
        "task_arithmetic": {"merge_method": "task_arithmetic", "base_model": str(base), "models": two},
        "ties": {"merge_method": "ties", "base_model": str(base), "models": dense},
        "dare_ties": {"merge_method": "dare_ties", "base_model": str(base), "models": dense},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", default="linear,slerp,task_arithmetic,ties,dare_ties")
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool and recipe; the best time is kept")
    args = parser.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    home = OUT / "home"
    env = {**os.environ, "PML_HOME": str(home)}
    base, a, b = prepare_models(env)
    size_mb = (base / "model.safetensors").stat().st_size / 2**20
    print(f"models: 3 × {size_mb:.0f} MB (fp32); {os.cpu_count()} CPUs\n")
    header = (f"{'recipe':<16} {'mergekit s':>10} {'pml s':>7} {'time ×':>7} "
              f"{'mergekit MB':>11} {'pml MB':>7} {'memory ×':>8}")
    print(header)
    print("-" * len(header))
    all_recipes = recipes(base, a, b)
    for name in args.recipes.split(","):
        path = OUT / f"{name}.yml"
        path.write_text(json.dumps({**all_recipes[name], "dtype": "float32"}))
        theirs, ours = [], []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(dir=OUT) as target:
                theirs.append(measured([str(VENV_BIN / "mergekit-yaml"), str(path), str(Path(target) / "out")], env))
            subprocess.run([str(VENV_BIN / "pml"), "models", "rm", f"bench-{name}"], env=env,
                           capture_output=True)
            ours.append(measured([str(VENV_BIN / "pml"), "merge", str(path), "-o", f"bench-{name}"], env))
            subprocess.run([str(VENV_BIN / "pml"), "models", "rm", f"bench-{name}"], env=env,
                           capture_output=True)
        (t_s, t_mb), (o_s, o_mb) = min(theirs), min(ours)
        print(f"{name:<16} {t_s:>10.1f} {o_s:>7.1f} {o_s / t_s:>7.2f} {t_mb:>11.0f} {o_mb:>7.0f} {o_mb / t_mb:>8.2f}",
              flush=True)
    print("\ntime × and memory × are pml / mergekit (lower is better; goal ≤ 1)")


if __name__ == "__main__":
    main()
