"""Generation speed of our engine at each precision against plain transformers and
llama.cpp, in one run.

Each contender runs in its own process (so peak memory is its own) on the same
model and the same prompt tokens (a real text: standard-library docstrings):
  - pimpmyllama at fp32, bf16, int8, int4 (`--precision`), and at int4 with
    PyTorch's kernels in place of ours (PML_KERNELS=0: what our kernels add); at
    int4 and int8 with our AVX2 kernels forced (PML_KERNELS=avx2: what a CPU without
    AVX-512 gets)
  - transformers fp32 `generate` (greedy, dynamic cache)
  - llama.cpp through llama-cpp-python, 2 threads, when llama_cpp is installed
    (`make bench` installs it) or under the Python `--llama-python` names: on the
    model's own GGUF (Q4_1, as bundled; its embedding/head is Q8_0), and on a
    Q8_0 file that llama.cpp's own quantizer makes from it (requantized from Q4_1: the same format, sizes and speed as a
    Q8_0 made from the original weights, so a fair speed reference for int8 —
    not a quality one); the same two files in an AVX2-only build of llama.cpp
    (`llama.cpp-avx2-*`: llama-cpp-python built with -DGGML_NATIVE=OFF
    -DGGML_AVX2=ON -DGGML_AVX512=OFF in its own environment, whose Python
    `--llama-avx2-python` names; the llama.cpp side of this script needs only the
    standard library and llama_cpp)
Measured: cold load, time to first token at 128- and 1024-token prompts, decode
tokens/s after each, and peak RSS; ratios are against llama.cpp Q4_1 when it ran,
else against transformers, and then for the comparable pairs (int4 / Q4_1, int8 /
Q8_0, and the same with AVX2 on both sides).

This machine's speed drifts by tens of percent within minutes (shared cores), so
the contenders take turns: `--rounds` passes over all of them, each contender in a
fresh process every time, and each figure is the best a contender reached.

    python bench/generation.py [--new-tokens 64] [--repeats 2] [--rounds 3] [--contenders A,B]
                               [--llama-python VENV/bin/python] [--llama-avx2-python VENV/bin/python]
"""

import argparse
import json
import subprocess
import sys
import time

CONTENDERS = ["pml-fp32", "pml-bf16", "pml-int8", "pml-int4", "pml-int4-pytorch", "pml-int8-avx2", "pml-int4-avx2",
              "transformers-fp32", "llama.cpp-Q4_1", "llama.cpp-Q8_0", "llama.cpp-avx2-Q4_1", "llama.cpp-avx2-Q8_0"]
PAIRS = [("pml-int4", "llama.cpp-Q4_1"), ("pml-int8", "llama.cpp-Q8_0"),
         ("pml-int4-avx2", "llama.cpp-avx2-Q4_1"), ("pml-int8-avx2", "llama.cpp-avx2-Q8_0")]
BEST = {"load": min, "rss": min, "ttft": min, "tps": max}


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
        import os

        from pimpmyllama.generation.engine import Engine

        precision, _, kernels = precision.partition("-")
        if kernels:  # before the engine loads them: pytorch (none of ours) or avx2
            os.environ["PML_KERNELS"] = {"pytorch": "0"}.get(kernels, kernels)

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


def gguf_file(kind: str, source: str) -> str:
    """The bundled Q4_1 file `source`, or a Q8_0 one made from it once (kept next to the bench)."""
    import ctypes
    import pathlib

    import llama_cpp

    source = pathlib.Path(source)
    if kind == "Q4_1":
        return str(source)
    target = pathlib.Path(__file__).parent / ".cache" / source.name.replace("Q4_1", kind)
    if not target.exists():
        target.parent.mkdir(exist_ok=True)
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{kind}")
        params.allow_requantize = True
        params.nthread = 2
        partial = target.with_suffix(".partial")
        if llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), ctypes.byref(params)):
            raise RuntimeError(f"llama.cpp could not make a {kind} file")
        partial.rename(target)
    return str(target)


class LlamaCpp:
    def __init__(self, gguf, precision):
        from llama_cpp import Llama

        self.llm = Llama(model_path=gguf_file(precision.rpartition("-")[2], gguf), n_ctx=2048, n_threads=2, n_batch=512, verbose=False)

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


def measure(contender: str, model: str, lengths: list[int], new_tokens: int, repeats: int, gguf: str | None) -> dict:
    kind, _, precision = contender.partition("-")
    t0 = time.perf_counter()
    if kind == "llama.cpp":  # under a Python that may have nothing but llama_cpp
        runner = LlamaCpp(gguf, precision)
    else:
        from pimpmyllama.models.refs import resolve_model_folder

        name, folder = resolve_model_folder(model)
        runner = {"pml": Ours, "transformers": Transformers}[kind](folder, name, precision)
    out = {"load": time.perf_counter() - t0}
    for length in lengths:
        ids = prompt_ids(runner.encode, length)
        runs = [runner.run(ids, new_tokens) for _ in range(repeats)]
        out[f"ttft{length}"] = min(r[0] for r in runs)
        out[f"tps{length}"] = max(r[1] for r in runs)
    out["rss"] = peak_rss_mb()
    return out


def python_for(contender: str, args) -> str:
    if contender.startswith("llama.cpp"):
        return args.llama_avx2_python if contender.startswith("llama.cpp-avx2") else args.llama_python
    return sys.executable


def run_alone(contender: str, args) -> dict | None:
    command = [python_for(contender, args), __file__, "--only", contender, "--model", args.model, "--lengths", args.lengths,
               "--new-tokens", str(args.new_tokens), "--repeats", str(args.repeats)]
    if contender.startswith("llama.cpp"):
        from pimpmyllama.models.defaults import bundled_default_gguf

        command += ["--gguf", str(bundled_default_gguf())]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        print(f"{contender}: failed\n{done.stderr[-2000:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def best_of(runs: list[dict]) -> dict:
    return {key: BEST[key.rstrip("0123456789")](run[key] for run in runs) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each prompt within a process")
    parser.add_argument("--rounds", type=int, default=3, help="passes over all contenders, taking turns")
    parser.add_argument("--lengths", default="128,1024")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--llama-python", default=sys.executable, help="a Python that imports llama_cpp (default: this one)")
    parser.add_argument("--llama-avx2-python", help="a Python that imports an AVX2-only build of llama_cpp")
    parser.add_argument("--only", help=argparse.SUPPRESS)  # one contender, in this process
    parser.add_argument("--gguf", help=argparse.SUPPRESS)  # the bundled Q4_1 file, for llama.cpp
    args = parser.parse_args()
    lengths = [int(n) for n in args.lengths.split(",")]
    if args.only:
        print(json.dumps(measure(args.only, args.model, lengths, args.new_tokens, args.repeats, args.gguf)))
        return

    contenders = args.contenders.split(",")
    imports = {}  # python -> whether it imports llama_cpp
    for contender in [c for c in contenders if c.startswith("llama.cpp")]:
        python = python_for(contender, args)
        if python not in imports:
            try:
                imports[python] = bool(python) and subprocess.run([python, "-c", "import llama_cpp"],
                                                                  capture_output=True).returncode == 0
            except OSError:  # no such Python
                imports[python] = False
        if not imports[python]:
            hint = "give --llama-avx2-python" if "avx2" in contender else "`make bench` installs it, or give --llama-python"
            print(f"{contender}: skipped (no llama_cpp to import; {hint})")
            contenders.remove(contender)
    runs: dict[str, list[dict]] = {c: [] for c in contenders}
    for round_ in range(1, args.rounds + 1):
        for contender in contenders:
            result = run_alone(contender, args)
            if result is not None:
                runs[contender].append(result)
        print(f"round {round_} of {args.rounds} done", flush=True)
    results = {c: best_of(r) for c, r in runs.items() if r}
    if not results:
        sys.exit("no contender ran")

    reference = next((r for r in ("llama.cpp-Q4_1", "transformers-fp32") if r in results), next(iter(results)))
    measures = [("load", "cold load (s)", "lower")]
    for n in lengths:
        measures += [(f"ttft{n}", f"time to first token, {n} (s)", "lower"),
                     (f"tps{n}", f"decode tokens/s after {n}", "higher")]
    measures.append(("rss", "peak RSS (MB)", "lower"))

    def ratio(key, better, ours, theirs):
        value, base = results[ours][key], results[theirs][key]
        return base / value if better == "lower" else value / base

    names = list(results)
    print(f"\nmodel {args.model} · {args.new_tokens} new tokens · best of {args.repeats} runs × {args.rounds} rounds"
          f" · ratio = how many times better than {reference}\n")
    print(f"{'measure':<30}" + "".join(f"{n:>22}" for n in names))
    for key, label, better in measures:
        cells = [f"{results[n][key]:>10.2f} ({ratio(key, better, n, reference):4.2f}×)" for n in names]
        print(f"{label:<30}" + "".join(f"{c:>22}" for c in cells))
    pairs = [(ours, theirs) for ours, theirs in PAIRS if ours in results and theirs in results]
    if pairs:
        print("\ncomparable precisions, ours / llama.cpp (> 1 = ours better)")
        print(f"{'measure':<30}" + "".join(f"{ours + ' / ' + theirs.partition('-')[2]:>26}" for ours, theirs in pairs))
        for key, label, better in measures[1:]:
            print(f"{label:<30}" + "".join(f"{ratio(key, better, *pair):>25.2f}×" for pair in pairs))


if __name__ == "__main__":
    main()
