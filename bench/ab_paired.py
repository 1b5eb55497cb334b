"""Two source trees of our engine measured in alternation, to tell a change of a few
per cent from this machine's drift.

`ab_engine.py` runs each tree as a fresh process in turn and keeps each one's best
figure; here speed drifts by 10-20 % within minutes, so a difference below that
needs both trees measured in the same minute many times. This script keeps one
worker process per tree loaded (its `src` first on PYTHONPATH, its own kernel
cache) and asks them in turn, A B B A A B ..., for one short measurement each:
the prefill of an N-token prompt into a fresh cache, or the median of 16
single-token steps after an N-token prompt. Each pair of neighbouring
measurements gives a ratio; the table shows the median ratio and its quartiles.
A ratio whose quartiles straddle 1.0 is no difference this machine can show.

A process also has a speed of its own: the same tree against itself in two
workers decoded 6-8 % faster in the worker started second, for whole runs (prefill
within 1 %). So the workers are started afresh for each of `--sessions`, in turns
(A first, then B first), and the ratios of all sessions pooled; use an even number.

    python bench/ab_paired.py before=/tmp/pml-before after=. [--precision int4] [--pairs 20] [--sessions 4]
"""

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

KERNEL_CACHES = Path(__file__).parent / ".cache" / "kernels"  # one per tree, as ab_engine.py keeps them
DECODE_STEPS = 16


def worker(model: str, precision: str, lengths: list[int]) -> None:
    """Load the model, make a cache per prompt length, then answer `prefill N` /
    `decode N` lines on stdin with one JSON number of seconds each."""
    sys.path.insert(0, str(Path(__file__).parent))
    from ab_engine import load_engine
    from generation import prompt_ids  # bench/generation.py: the same prompt text

    engine = load_engine(model, precision)
    backend = engine.backend
    prompts = {n: prompt_ids(engine.tokenizer.encode, n) for n in lengths}
    caches, first = {}, {}
    for n, ids in prompts.items():
        caches[n] = backend.new_cache(n + 64)
        first[n] = int(backend.forward(ids, caches[n], 0).argmax())
        for k in range(2 * DECODE_STEPS + 32):  # past any trace-after warm-up, and the trace made
            backend.forward([first[n]], caches[n], n + k % DECODE_STEPS)
    print(json.dumps({"ready": first}), flush=True)
    for line in sys.stdin:
        what, n = line.split()
        n = int(n)
        if what == "prefill":
            cache = backend.new_cache(n + 64)
            t0 = time.perf_counter()
            backend.forward(prompts[n], cache, 0)
            print(json.dumps(time.perf_counter() - t0), flush=True)
        else:
            times = []
            for k in range(DECODE_STEPS):
                t0 = time.perf_counter()
                backend.forward([first[n]], caches[n], n + k)
                times.append(time.perf_counter() - t0)
            print(json.dumps(statistics.median(times)), flush=True)


class Worker:
    def __init__(self, tree: str, args):
        root = Path(tree).resolve()
        cache = KERNEL_CACHES / hashlib.sha256(str(root).encode()).hexdigest()[:12]
        env = dict(os.environ, PYTHONPATH=str(root / "src"), XDG_CACHE_HOME=str(cache))
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", "--model", args.model, "--precision", args.precision,
             "--lengths", args.lengths], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"{tree}: the worker did not start (see its error above)")
        self.first_tokens = json.loads(line)["ready"]

    def ask(self, request: str) -> float:
        self.process.stdin.write(request + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("contenders", nargs="*", help="A=TREE B=TREE: ratios are A's time / B's (B faster: > 1)")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--precision", default="int4")
    parser.add_argument("--lengths", default="128,1024")
    parser.add_argument("--pairs", type=int, default=20, help="alternations of each measurement in each session")
    parser.add_argument("--sessions", type=int, default=4, help="fresh workers for each, started in turns")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    lengths = [int(n) for n in args.lengths.split(",")]
    if args.worker:
        worker(args.model, args.precision, lengths)
        return
    if len(args.contenders) != 2:
        parser.error("give two contenders, LABEL=TREE each")
    labels, trees = zip(*(spec.partition("=")[::2] for spec in args.contenders))
    requests = [f"{what} {n}" for n in lengths for what in ("prefill", "decode")]
    times = {r: ([], []) for r in requests}
    started = time.perf_counter()
    same = True
    for session in range(args.sessions):
        starts = (0, 1) if session % 2 == 0 else (1, 0)  # the later-started worker decoded faster: alternate
        started_workers = {w: Worker(trees[w], args) for w in starts}
        workers = [started_workers[0], started_workers[1]]
        same = same and workers[0].first_tokens == workers[1].first_tokens
        for i in range(args.pairs):
            for request in requests:
                order = (0, 1) if i % 2 == 0 else (1, 0)  # A B, then B A: neither always goes first
                for w in order:
                    times[request][w].append(workers[w].ask(request))
        for w in workers:
            w.close()
        print(f"session {session + 1} of {args.sessions} done ({time.perf_counter() - started:.0f} s)", flush=True)

    a, b = labels
    print(f"\nmodel {args.model} · {args.precision} · {args.sessions} sessions × {args.pairs} alternating pairs "
          f"({time.perf_counter() - started:.0f} s) · ratio = {a}'s time / {b}'s (> 1: {b} faster)\n")
    print(f"{'measure':<38}{a + ' ms':>14}{b + ' ms':>14}{'ratio':>9}{'quartiles':>16}")
    for request in requests:
        ta, tb = times[request]
        ratios = [x / y for x, y in zip(ta, tb)]
        q1, _, q3 = statistics.quantiles(ratios, n=4)
        what, n = request.split()
        label = f"prefill of {n} tokens" if what == "prefill" else f"decode step after {n} (median of {DECODE_STEPS})"
        print(f"{label:<38}{statistics.median(ta) * 1000:>14.2f}{statistics.median(tb) * 1000:>14.2f}"
              f"{statistics.median(ratios):>8.3f}×{f'{q1:.3f}–{q3:.3f}':>16}")
    print(f"\nfirst greedy token after each prompt identical: {'yes' if same else 'NO'}\n")


if __name__ == "__main__":
    main()
