"""Generation speed of our engine at each precision against plain transformers and
llama.cpp, in one run.

Each contender runs in its own process (so peak memory is its own) on the same
model and the same prompt tokens (a real text: standard-library docstrings):
  - pimpmyllama at fp32, bf16, int8, int4 (`--precision`)
  - transformers fp32 `generate` (greedy, dynamic cache)
  - llama.cpp through llama-cpp-python on the model's own GGUF (Q4_1, as bundled),
    2 threads, when llama_cpp is installed (`make bench` installs it)
Measured: cold load, time to first token at 128- and 1024-token prompts, decode
tokens/s after each, and peak RSS; ratios are against llama.cpp when it ran, else
against transformers.

    python bench/generation.py [--new-tokens 64] [--repeats 3] [--only NAME]
"""

import argparse
import json
import subprocess
import sys
import time

CONTENDERS = ["pml-fp32", "pml-bf16", "pml-int8", "pml-int4", "transformers-fp32", "llama.cpp-Q4_1"]


def prompt_ids(tokenizer_encode, length: int) -> list[int]:
    import inspect
    import json as m1
    import logging as m2
    import pathlib as m3
    import subprocess as m4

    text = "\n\n".join(inspect.getdoc(m) or "" for m in (m4, m2, m1, m3))
    ids = tokenizer_encode(text)
    while len(ids) < length:
        ids = ids + ids
    return ids[:length]


def peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


class Ours:
    def __init__(self, folder, name, precision):
        from pimpmyllama.generation.engine import Engine

        self.engine = Engine.load(name, folder, precision=precision)

    def encode(self, text):
        return self.engine.tokenizer.encode(text)

    def run(self, ids, new_tokens):
        from pimpmyllama.generation.engine import GenerationParams
        from pimpmyllama.generation.sampling import SamplingParams

        self.engine._cache = None  # a cold prompt each time: no prefix reuse
        params = GenerationParams(max_new_tokens=new_tokens, ignore_end_tokens=True,
                                  sampling=SamplingParams(temperature=0, repeat_penalty=1.0))
        usage = self.engine.generate(ids, params, 2048).run().usage
        return usage.prefill_seconds, usage.tokens_per_second


class Transformers:
    def __init__(self, folder, name, precision):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging

        logging.set_verbosity_error()
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()

    def encode(self, text):
        return self.tokenizer.encode(text)

    def run(self, ids, new_tokens):
        import torch

        x = torch.tensor([ids])
        with torch.inference_mode():
            t0 = time.perf_counter()
            self.model.generate(x, max_new_tokens=1, min_new_tokens=1, do_sample=False)
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            self.model.generate(x, max_new_tokens=new_tokens + 1, min_new_tokens=new_tokens + 1, do_sample=False)
            total = time.perf_counter() - t0
        return first, new_tokens / (total - first)


class LlamaCpp:
    def __init__(self, folder, name, precision):
        from llama_cpp import Llama

        from pimpmyllama.models.defaults import bundled_default_gguf

        self.llm = Llama(model_path=str(bundled_default_gguf()), n_ctx=2048, n_threads=2, n_batch=512,
                         verbose=False)

    def encode(self, text):
        return self.llm.tokenize(text.encode(), add_bos=False)

    def run(self, ids, new_tokens):
        self.llm.reset()
        t0 = time.perf_counter()
        self.llm.eval(ids)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(new_tokens):
            token = self.llm.sample(temp=0.0)  # greedy
            self.llm.eval([token])
        return first, new_tokens / (time.perf_counter() - t0)


def measure(contender: str, model: str, lengths: list[int], new_tokens: int, repeats: int) -> dict:
    from pimpmyllama.models.store import ModelStore

    name, folder = ModelStore().resolve(model)
    kind, _, precision = contender.partition("-")
    cls = {"pml": Ours, "transformers": Transformers, "llama.cpp": LlamaCpp}[kind]
    t0 = time.perf_counter()
    runner = cls(folder, name, precision)
    out = {"load": time.perf_counter() - t0}
    for length in lengths:
        ids = prompt_ids(runner.encode, length)
        runs = [runner.run(ids, new_tokens) for _ in range(repeats)]
        out[f"ttft{length}"] = min(r[0] for r in runs)
        out[f"tps{length}"] = max(r[1] for r in runs)
    out["rss"] = peak_rss_mb()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lengths", default="128,1024")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--only", help=argparse.SUPPRESS)  # one contender, in this process
    args = parser.parse_args()
    lengths = [int(n) for n in args.lengths.split(",")]
    if args.only:
        print(json.dumps(measure(args.only, args.model, lengths, args.new_tokens, args.repeats)))
        return

    results = {}
    for contender in args.contenders.split(","):
        if contender.startswith("llama.cpp"):
            try:
                import llama_cpp  # noqa: F401
            except ImportError:
                print(f"{contender}: skipped (llama_cpp is not installed; `make bench` installs it)")
                continue
        command = [sys.executable, __file__, "--only", contender, "--model", args.model, "--lengths", args.lengths,
                   "--new-tokens", str(args.new_tokens), "--repeats", str(args.repeats)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            print(f"{contender}: failed\n{done.stderr[-2000:]}")
            continue
        results[contender] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{contender}: done", flush=True)

    reference = next((r for r in ("llama.cpp-Q4_1", "transformers-fp32") if r in results), next(iter(results)))
    measures = [("load", "cold load (s)", "lower")]
    for n in lengths:
        measures += [(f"ttft{n}", f"time to first token, {n} (s)", "lower"),
                     (f"tps{n}", f"decode tokens/s after {n}", "higher")]
    measures.append(("rss", "peak RSS (MB)", "lower"))
    names = list(results)
    print(f"\nmodel {args.model} · {args.new_tokens} new tokens · best of {args.repeats} · "
          f"ratio = how many times better than {reference}\n")
    print(f"{'measure':<30}" + "".join(f"{n:>19}" for n in names))
    for key, label, better in measures:
        cells = []
        for n in names:
            value, base = results[n][key], results[reference][key]
            ratio = base / value if better == "lower" else value / base
            cells.append(f"{value:>10.2f} ({ratio:4.2f}×)")
        print(f"{label:<30}" + "".join(f"{c:>19}" for c in cells))


if __name__ == "__main__":
    main()
