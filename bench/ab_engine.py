"""Our engine from two (or more) source trees, side by side in one run: a change
against the code before it, on the same model, prompts and precision.

Each contender is `LABEL=TREE` (TREE holds `src/pimpmyllama`), optionally
`LABEL=TREE:untraced` (single-token steps on the Python path instead of the
TorchScript trace). The first contender is the baseline of the ratios. Each run is
its own process with the tree's `src` first on PYTHONPATH and its own kernel cache
(trees with different kernel sources would otherwise rebuild over each other); the
contenders take turns over `--rounds` (this machine's speed drifts within minutes)
and each figure is the best a contender reached. The greedy tokens each contender
generated are compared too: a change that moved them says so.

    python bench/ab_engine.py before=/tmp/pml-before after=. [--precision int4] [--rounds 5]
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

KERNEL_CACHES = Path(__file__).parent / ".cache" / "kernels"  # one per tree


def load_engine(model: str, precision: str):
    """The engine of whichever tree is first on PYTHONPATH, loaded at `precision`."""
    from pimpmyllama.generation.engine import Engine
    try:  # the reference resolver; trees from before it had ModelStore.resolve
        from pimpmyllama.models.refs import resolve_model_folder
    except ImportError:
        from pimpmyllama.models.store import ModelStore

        resolve_model_folder = ModelStore().resolve
    name, folder = resolve_model_folder(model)
    return Engine.load(name, folder, precision=precision)


def measure(model: str, precision: str, untraced: bool, lengths: list[int], new_tokens: int, repeats: int) -> dict:
    sys.path.insert(0, str(Path(__file__).parent))
    from generation import prompt_ids  # bench/generation.py: the same prompt text

    from pimpmyllama.generation.engine import GenerationParams
    from pimpmyllama.generation.sampling import SamplingParams
    engine = load_engine(model, precision)
    if untraced:
        engine.backend.traced = False
    params = GenerationParams(max_new_tokens=new_tokens, ignore_end_tokens=True,
                              sampling=SamplingParams(temperature=0, repeat_penalty=1.0))
    out = {}
    for length in lengths:
        ids = prompt_ids(engine.tokenizer.encode, length)
        runs = []
        for _ in range(repeats):
            engine._cache = None  # a cold prompt each time: no prefix reuse
            runs.append(engine.generate(ids, params, 2048).run())
        out[f"ttft{length}"] = min(r.usage.prefill_seconds for r in runs)
        out[f"tps{length}"] = max(r.usage.tokens_per_second for r in runs)
        out[f"tokens{length}"] = runs[0].tokens
        out[f"step{length}"] = fast_step(engine.backend, ids, new_tokens)
    return out


def fast_step(backend, ids: list[int], steps: int) -> float:
    """Steps per second at the 10th-percentile step time of `steps` single-token steps
    after `ids`: on shared cores a run's average mostly measures the neighbours, the
    fast steps measure the code."""
    cache = backend.new_cache(2048)
    token = int(backend.forward(ids, cache, 0).argmax())
    times = []
    for position in range(len(ids), len(ids) + steps):
        t0 = time.perf_counter()
        token = int(backend.forward([token], cache, position).argmax())
        times.append(time.perf_counter() - t0)
    return 1 / sorted(times)[len(times) // 10]


def run_alone(tree: str, untraced: bool, args) -> dict | None:
    root = Path(tree).resolve()
    cache = KERNEL_CACHES / hashlib.sha256(str(root).encode()).hexdigest()[:12]
    env = dict(os.environ, PYTHONPATH=str(root / "src"), XDG_CACHE_HOME=str(cache))
    command = [sys.executable, __file__, "--only", tree, "--model", args.model, "--precision", args.precision,
               "--lengths", args.lengths, "--new-tokens", str(args.new_tokens), "--repeats", str(args.repeats)]
    if untraced:
        command.append("--untraced")
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        print(f"{tree}: failed\n{done.stderr[-2000:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("contenders", nargs="*", help="LABEL=TREE or LABEL=TREE:untraced; the first is the baseline")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--precision", default="int4")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each prompt within a process")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lengths", default="128,1024")
    parser.add_argument("--only", help=argparse.SUPPRESS)  # one tree, in this process
    parser.add_argument("--untraced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    lengths = [int(n) for n in args.lengths.split(",")]
    if args.only:
        print(json.dumps(measure(args.model, args.precision, args.untraced, lengths, args.new_tokens, args.repeats)))
        return

    contenders = {}
    for spec in args.contenders:
        label, _, tree = spec.partition("=")
        tree, _, mode = tree.partition(":")
        contenders[label] = (tree, mode == "untraced")
    runs: dict[str, list[dict]] = {label: [] for label in contenders}
    started = time.perf_counter()
    for round_ in range(1, args.rounds + 1):
        for label, (tree, untraced) in contenders.items():
            result = run_alone(tree, untraced, args)
            if result is not None:
                runs[label].append(result)
        print(f"round {round_} of {args.rounds} done ({time.perf_counter() - started:.0f} s)", flush=True)
        print_table(runs, args, lengths, round_)  # after each round: a run cut short still reports


def print_table(runs: dict[str, list[dict]], args, lengths: list[int], rounds: int) -> None:
    labels = [label for label in runs if runs[label]]
    if not labels:
        return
    baseline = labels[0]
    best = {label: {key: (min if key.startswith("ttft") else max)(r[key] for r in runs[label])
                    for key in runs[label][0] if not key.startswith("tokens")} for label in labels}

    print(f"\nmodel {args.model} · {args.precision} · {args.new_tokens} new tokens · best of {args.repeats} runs × "
          f"{rounds} rounds · ratio = how many times better than {baseline}\n")
    print(f"{'measure':<30}" + "".join(f"{label:>22}" for label in labels))
    for n in lengths:
        for key, label, lower in ((f"ttft{n}", f"time to first token, {n} (s)", True),
                                  (f"tps{n}", f"decode tokens/s after {n}", False),
                                  (f"step{n}", "  same, p10 step (steps/s)", False)):
            cells = []
            for c in labels:
                value, base = best[c][key], best[baseline][key]
                cells.append(f"{value:>10.4f} ({(base / value if lower else value / base):5.3f}×)")
            print(f"{label:<30}" + "".join(f"{cell:>22}" for cell in cells))
    same = all(run[f"tokens{n}"] == runs[baseline][0][f"tokens{n}"] for c in labels for run in runs[c] for n in lengths)
    print(f"\ngreedy tokens identical across contenders and rounds: {'yes' if same else 'NO'}\n", flush=True)


if __name__ == "__main__":
    main()
