"""Generation speed of our engine against plain transformers, in one run.

Measures, on the same model from the store and the same prompt tokens:
  - cold load: Engine.load vs AutoModelForCausalLM.from_pretrained (+ tokenizer)
  - time to first token at 128- and 1024-token prompts
  - decode tokens/s (greedy, a fixed number of new tokens)
Baseline: transformers fp32 `generate` (greedy, dynamic cache).

    python bench/generation.py [--model smollm2-135m-instruct] [--new-tokens 64] [--repeats 3]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch


def prompt_ids(tokenizer, length: int) -> list[int]:
    """A real text, cut to `length` tokens: the docstrings of the standard library's
    modules, which every machine with Python has."""
    import inspect
    import json as m1
    import logging as m2
    import pathlib as m3
    import subprocess as m4

    text = "\n\n".join(inspect.getdoc(m) or "" for m in (m4, m2, m1, m3))
    ids = tokenizer.encode(text)
    while len(ids) < length:
        ids = ids + ids
    return ids[:length]


def best(values):
    return min(values)


def bench_ours(engine, ids, new_tokens, repeats):
    from pimpmyllama.generation.engine import GenerationParams
    from pimpmyllama.generation.sampling import SamplingParams

    params = GenerationParams(max_new_tokens=new_tokens, ignore_end_tokens=True,
                              sampling=SamplingParams(temperature=0, repeat_penalty=1.0))
    ttft, tps = [], []
    for _ in range(repeats):
        engine._cache = None  # no prefix reuse between repeats: a cold prompt each time
        c = engine.generate(ids, params, 2048).run()
        assert c.usage.completion_tokens == new_tokens
        ttft.append(c.usage.prefill_seconds)
        tps.append(c.usage.tokens_per_second)
    return best(ttft), max(tps)


def bench_transformers(model, ids, new_tokens, repeats):
    x = torch.tensor([ids])
    ttft, tps = [], []
    with torch.inference_mode():
        for _ in range(repeats):
            t0 = time.perf_counter()
            model.generate(x, max_new_tokens=1, min_new_tokens=1, do_sample=False)
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            out = model.generate(x, max_new_tokens=new_tokens + 1, min_new_tokens=new_tokens + 1, do_sample=False)
            total = time.perf_counter() - t0
            assert out.shape[1] == len(ids) + new_tokens + 1
            ttft.append(first)
            tps.append(new_tokens / (total - first))
    return best(ttft), max(tps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lengths", default="128,1024")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())

    from pimpmyllama.generation.engine import Engine
    from pimpmyllama.models.store import ModelStore

    name, folder = ModelStore().resolve(args.model)

    t0 = time.perf_counter()
    engine = Engine.load(name, folder)
    ours_load = time.perf_counter() - t0

    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    t0 = time.perf_counter()
    AutoTokenizer.from_pretrained(str(folder))
    hf = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    hf.eval()
    hf_load = time.perf_counter() - t0

    rows = [("cold load from store (s)", ours_load, hf_load, "lower")]
    for length in (int(n) for n in args.lengths.split(",")):
        ids = prompt_ids(engine.tokenizer, length)
        o_ttft, o_tps = bench_ours(engine, ids, args.new_tokens, args.repeats)
        h_ttft, h_tps = bench_transformers(hf, ids, args.new_tokens, args.repeats)
        rows.append((f"time to first token, {length}-token prompt (s)", o_ttft, h_ttft, "lower"))
        rows.append((f"decode tokens/s after a {length}-token prompt", o_tps, h_tps, "higher"))

    print(f"\nmodel {name} · {torch.get_num_threads()} threads · {args.new_tokens} new tokens · best of {args.repeats}")
    print(f"baseline: transformers {__import__('transformers').__version__} fp32 generate (greedy)\n")
    header = f"{'measure':<48} {'pimpmyllama':>12} {'transformers':>13} {'ratio':>8}"
    print(header)
    print("-" * len(header))
    for label, ours, base, better in rows:
        ratio = base / ours if better == "lower" else ours / base
        print(f"{label:<48} {ours:>12.3f} {base:>13.3f} {ratio:>7.2f}x")
    print("\nratio > 1 means pimpmyllama is faster.")


if __name__ == "__main__":
    sys.exit(main())
