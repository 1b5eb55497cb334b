"""What stretching the default model's context costs: perplexity at 1×, 2× and 4× its
trained length (8192 tokens), with no rope scaling (the baseline, same run) and with
linear, dynamic and YaRN scaling at factor = num_ctx / 8192.

Text: nine licenses from /usr/share/common-licenses, joined in this order — GPL-3,
GPL-2, LGPL-2.1, Apache-2.0, MPL-2.0, GFDL-1.3, Artistic, CC0-1.0, LGPL-3 — 33,261
tokens of English (legal) prose; its first 32,768 tokens are the text T.
Each cell scores one window: the last num_ctx tokens of T, from an empty cache, on
our engine at the default precision (int4). Reported: perplexity over the last 4096
tokens of T (the same tokens in every cell, each seeing num_ctx − 4096 or more tokens
before it) and over the whole window. Cells are appended to a JSON-lines file as
they finish (a run can stop and resume).

    nice python bench/long_context.py [--out bench/long_context.jsonl] [--precision int4] [--threads N]
                                      [--only 16384:yarn ...]
"""

import argparse
import json
import math
import resource
import time
from pathlib import Path

LICENSES = ["GPL-3", "GPL-2", "LGPL-2.1", "Apache-2.0", "MPL-2.0", "GFDL-1.3", "Artistic", "CC0-1.0", "LGPL-3"]
TRAINED = 8192
TEXT_TOKENS = 32768
SCORED = 4096  # the tokens every cell is compared on
CELLS = [(8192, None)] + [(n, kind) for n in (16384, 32768) for kind in (None, "yarn", "dynamic", "linear")]


def text_ids(tokenizer) -> list[int]:
    text = "\n\n".join((Path("/usr/share/common-licenses") / name).read_text() for name in LICENSES)
    ids = tokenizer.encode(text)
    assert len(ids) >= TEXT_TOKENS, len(ids)
    return ids[:TEXT_TOKENS]


def run_cell(name, folder, precision, num_ctx, kind) -> dict:
    import torch

    from pimpmyllama.generation.engine import Engine
    from pimpmyllama.generation.windows import token_losses
    from pimpmyllama.prompting.build import RopeScaling

    if kind:
        scaling = RopeScaling(type=kind, factor=num_ctx / TRAINED)
        engine = Engine.load(name, folder, precision=precision, rope_scaling=scaling, num_ctx=num_ctx)
    else:  # the baseline past the trained length, which a build would refuse: the backend has no limit
        engine = Engine.load(name, folder, precision=precision)
    window = text_ids(engine.tokenizer)[-num_ctx:]
    t0 = time.perf_counter()
    losses = token_losses(engine.backend, window)
    return {"num_ctx": num_ctx, "rope": kind or "none", "factor": num_ctx / TRAINED if kind else None,
            "ppl_last": math.exp(float(losses[-SCORED:].mean())), "ppl_window": math.exp(float(losses.mean())),
            "seconds": round(time.perf_counter() - t0, 1),
            "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
            "precision": precision, "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d")}


def table(rows: list[dict]) -> str:
    lines = ["| num_ctx | rope scaling | ppl, last 4096 tokens | ppl, whole window | time (s) |",
             "|---|---|---|---|---|"]
    for r in rows:
        rope = "none" if r["rope"] == "none" else f"{r['rope']} × {r['factor']:g}"
        lines.append(f"| {r['num_ctx']} ({r['num_ctx'] // TRAINED}×) | {rope} | {r['ppl_last']:.3f} | "
                     f"{r['ppl_window']:.3f} | {r['seconds']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    from pimpmyllama.models.defaults import DEFAULT_MODEL
    from pimpmyllama.models.refs import resolve_model_folder

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("bench/long_context.jsonl"))
    parser.add_argument("--precision", default="int4")
    parser.add_argument("--max-ctx", type=int, default=32768, help="skip cells longer than this")
    parser.add_argument("--only", nargs="*", help="run only these cells, as NUM_CTX:ROPE (e.g. 16384:yarn)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    name, folder = resolve_model_folder(DEFAULT_MODEL)
    done = [json.loads(line) for line in args.out.read_text().splitlines()] if args.out.exists() else []
    for num_ctx, kind in CELLS:
        if num_ctx > args.max_ctx or any(r["num_ctx"] == num_ctx and r["rope"] == (kind or "none") for r in done):
            continue
        if args.only and f"{num_ctx}:{kind or 'none'}" not in args.only:
            continue
        row = run_cell(name, folder, args.precision, num_ctx, kind)
        done.append(row)
        with args.out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
    print(table(done))


if __name__ == "__main__":
    main()
