"""The quality guard for the engine's precisions, on the real default model.

One pass per precision over a real text already on the machine (CPython's
LICENSE.txt, whose first part is the history of Python in prose), on the decode path
— one token at a time, as generated tokens are — in windows of 512 tokens
(generation/guard.py). Against fp32's pass over the same tokens:
  - agreement: the share of the positions at which the most likely next token is
    fp32's (what the guard counts), the same over the positions where fp32 has a clear
    choice (its two most likely tokens NEAR_TIE logits apart or more,
    generation/guard.py), and how many of the disagreements are near-ties in fp32 itself;
  - perplexity, and its rise over fp32's;
  - decode tokens/s of those steps (wall clock), and tokens per CPU-second (the
    least noisy speed figure on a shared machine with --threads 1).
Each precision's guard (generation/precision.py): at int8 (and bf16) agreement at
every position >= 98 % and perplexity <= +1 %; at int4 >= 95 % and <= +5 %. The fastest
precision that passes is the one that should be the default.

`--llama-python PATH` adds llama.cpp's own formats, measured the same way: the model
exported as an F32 GGUF (`pml export --format gguf --quant f32`), quantized by
llama.cpp's quantizer to each of `--llama-types` (as its users make them), each file
run by llama-cpp-python (that interpreter: its own environment) over the same windows
with every position's logits kept, against our fp32 pass. What llama.cpp reaches is
what a criterion on 8-bit and 4-bit formats can ask of ours.

`--grids` adds 8-bit weight grids measured by quality alone: the weights of every
linear layer (the head included) rounded to the grid and restored in fp32, products
in fp32 — "row" (one scale per output row), "g32" (one fp16 scale per group of 32
inputs, llama.cpp's Q8_0, as int8 holds them) and "a32" (an fp16 scale and minimum per
group of 32, 256 levels). Their speed is not the format's.

    python bench/precision.py [--tokens 2048] [--precisions fp32,bf16,int8,int4]
                              [--grids row,g32,a32] [--threads 1] [--model PATH]
                              [--llama-python PATH [--llama-types F32,Q8_0,Q4_1]]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


GRID_GROUP = 32


def row_grid(weight):
    from pimpmyllama.generation.quant import quantize_int8

    q, scales = quantize_int8(weight)
    return q.float() * scales[:, None]


def group_grid(weight, group: int = GRID_GROUP):
    """Q8_0: d = max|w| / 127 per group, kept as fp16; q = round(w / d) against the exact d."""
    import torch

    n, k = weight.shape
    w = weight.float().reshape(n, k // group, group)
    d = w.abs().amax(-1, keepdim=True) / 127
    q = torch.round(w * torch.where(d > 0, 1 / d, 0)).clamp(-127, 127)
    return (q * d.half().float()).reshape(n, k)


def asymmetric_group_grid(weight, group: int = GRID_GROUP):
    """An 8-bit grid with a minimum: w = q * d + m per group of 32, q in 0..255, d and m fp16
    (Q4_1's form with 256 levels), each weight rounded against the kept d and m."""
    import torch

    n, k = weight.shape
    w = weight.float().reshape(n, k // group, group)
    m = w.amin(-1, keepdim=True).half().float()
    d = ((w.amax(-1, keepdim=True) - m) / 255).clamp(min=1e-7).half().float()
    return (torch.round((w - m) / d).clamp(0, 255) * d + m).reshape(n, k)


GRIDS = {"row": row_grid, "g32": group_grid, "a32": asymmetric_group_grid}


def on_grid(model, grid) -> None:
    """Every linear layer of an fp32 model (the head included) replaced by its weights
    rounded to `grid`, still fp32 (before the first step traces them)."""
    import torch

    from pimpmyllama.generation.products import Dense

    linears = [lin for block in model.layers for lin in (block.qkv, block.out, block.gate_up, block.down)]
    for linear in linears + [model.head]:
        linear.product = Dense(grid(linear.product.weight), torch.float32)


def load(folder, variant: str):
    from pimpmyllama.generation.loading import load_backend

    if variant.startswith("int8-"):
        model = load_backend(folder, "fp32")
        on_grid(model, GRIDS[variant.removeprefix("int8-")])
        return model
    return load_backend(folder, variant)


def llama_cpp_pass(gguf: str, kind: str, ids: list[int], window: int) -> dict:
    """In llama-cpp-python's interpreter: `gguf` (F32) quantized by llama.cpp to `kind`,
    run over `ids` in windows of `window` + 1 tokens as guard.decode_pass reads them;
    the same fields as a DecodePass."""
    import ctypes

    import llama_cpp
    import numpy as np

    path = gguf
    if kind != "F32":
        path = str(Path(gguf).with_suffix(f".{kind}.gguf"))
        if not os.path.exists(path):
            params = llama_cpp.llama_model_quantize_default_params()
            params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{kind}")
            params.nthread = 2
            if llama_cpp.llama_model_quantize(gguf.encode(), (path + ".partial").encode(), ctypes.byref(params)):
                raise SystemExit(f"llama.cpp could not quantize to {kind}")
            os.rename(path + ".partial", path)
    llm = llama_cpp.Llama(model_path=path, n_ctx=window + 1, n_batch=window + 1, n_ubatch=window + 1,
                          logits_all=True, n_threads=2, verbose=False)
    top1, margins, nll = [], [], 0.0
    t0 = time.perf_counter()
    for start in range(0, len(ids) - 1, window):
        chunk = ids[start : start + window + 1]
        llm.reset()
        llm.eval(chunk[:-1])
        logits = np.asarray(llm.scores[: len(chunk) - 1], dtype=np.float64)
        best = np.argsort(logits, axis=1)[:, -2:]
        rows = np.arange(len(logits))
        top1 += best[:, 1].tolist()
        margins += (logits[rows, best[:, 1]] - logits[rows, best[:, 0]]).tolist()
        peak = logits.max(axis=1)
        log_z = peak + np.log(np.exp(logits - peak[:, None]).sum(axis=1))
        nll += float((log_z - logits[rows, chunk[1:]]).sum())
    return {"top1": top1, "margins": margins, "nll": nll, "seconds": time.perf_counter() - t0}


def llama_cpp_passes(python: str, folder, model: str, kinds: list[str], ids: list[int], window: int) -> dict:
    """Each of llama.cpp's `kinds` as a DecodePass, run in `python` (llama-cpp-python's own
    environment); the F32 GGUF is exported once and kept under bench/.cache."""
    from pimpmyllama import api
    from pimpmyllama.generation.guard import DecodePass

    gguf = Path(__file__).parent / ".cache" / f"{Path(folder).name}.f32.gguf"
    if not gguf.exists():
        gguf.parent.mkdir(exist_ok=True)
        partial = gguf.with_suffix(".partial.gguf")
        api.export(model, partial, format="gguf", quant="f32")
        partial.rename(gguf)
    passes = {}
    with tempfile.NamedTemporaryFile("w", suffix=".json") as tokens:
        json.dump(ids, tokens)
        tokens.flush()
        for kind in kinds:
            done = subprocess.run([python, __file__, "--llama-worker", kind, "--gguf", str(gguf), "--ids", tokens.name,
                                   "--window", str(window)], capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"llama.cpp {kind}: {done.stderr.strip().splitlines()[-1:]}")
            passes[f"llama.cpp {kind}"] = DecodePass(**json.loads(done.stdout.splitlines()[-1]))
            print(f"  llama.cpp {kind}: {passes[f'llama.cpp {kind}'].seconds:.0f} s", flush=True)
    return passes


def main() -> None:
    if "--llama-worker" in sys.argv:  # llama-cpp-python's interpreter, without our package
        worker = argparse.ArgumentParser()
        for option in ("--llama-worker", "--gguf", "--ids"):
            worker.add_argument(option)
        worker.add_argument("--window", type=int)
        a = worker.parse_args()
        print(json.dumps(llama_cpp_pass(a.gguf, a.llama_worker, json.loads(Path(a.ids).read_text()), a.window)))
        return
    import torch  # here: the llama.cpp worker above runs where torch is not installed

    from pimpmyllama.generation.guard import NEAR_TIE, WINDOW, decode_pass, judge
    from pimpmyllama.generation.precision import DEFAULT_PRECISION
    from pimpmyllama.models.defaults import DEFAULT_MODEL
    from pimpmyllama.models.refs import resolve_model_folder
    from pimpmyllama.prompting.tokenizer import Tokenizer
    from pimpmyllama.training.perplexity import default_general_text

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--tokens", type=int, default=2048, help="tokens of the reference text")
    parser.add_argument("--precisions", default="fp32,bf16,int8,int4")
    parser.add_argument("--grids", default="", help="8-bit weight grids to measure by quality: row,g32")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    parser.add_argument("--llama-python", help="llama-cpp-python's interpreter: adds llama.cpp's formats")
    parser.add_argument("--llama-types", default="F32,Q8_0,Q4_1", help="llama.cpp's types to measure")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    _, folder = resolve_model_folder(args.model)
    ids = Tokenizer(folder).encode(default_general_text().read_text(encoding="utf-8"))[: args.tokens + 1]
    variants = ["fp32"] + [p for p in args.precisions.split(",") if p != "fp32"]
    variants += [f"int8-{g}" for g in args.grids.split(",") if g]
    passes, cpu = {}, {}
    for variant in variants:
        model = load(folder, variant)
        model.forward(ids[:1], model.new_cache(1), 0)  # traces the step: not part of the timing
        c0 = time.process_time()
        passes[variant] = decode_pass(model, ids)
        cpu[variant] = time.process_time() - c0
        print(f"  {variant}: {passes[variant].seconds:.0f} s", flush=True)
        del model
    if args.llama_python:
        passes.update(llama_cpp_passes(args.llama_python, folder, args.model, args.llama_types.split(","), ids, WINDOW))

    reference = passes["fp32"]
    near_ties = sum(m < NEAR_TIE for m in reference.margins)
    print(f"\n{len(reference.top1)} positions ({near_ties} near-ties in fp32: its top two within {NEAR_TIE} "
          f"logits), torch threads {torch.get_num_threads()}")
    print(f"{'precision':<16} {'clear agreement':>20} {'every position':>15} {'ties/diff':>9} {'perplexity':>10} "
          f"{'vs fp32':>8} {'tok/s':>6} {'tok/CPU-s':>9}  guard")
    passing = []
    for variant, run in passes.items():
        llama = variant.startswith("llama.cpp")
        verdict = judge("fp32" if llama else variant.split("-")[0], run, reference)
        label = {None: "reference", True: "pass", False: "fail"}[verdict.passed]
        if variant.startswith("int8-"):
            label += " (fake-quant: quality only)"
        elif llama:
            label = "llama.cpp's own (prompt batches: speed not comparable)"
        elif verdict.passed is not False:
            passing.append((run.tokens_per_second, variant))
        differ = [i for i, (a, b) in enumerate(zip(run.top1, reference.top1)) if a != b]
        clear_agreeing = round(verdict.clear_agreement * verdict.clear)
        agreeing = f"{clear_agreeing}/{verdict.clear} ({verdict.clear_agreement:.2%})"
        near = sum(reference.margins[i] < NEAR_TIE for i in differ)
        every = verdict.agreement
        per_cpu = f"{len(run.top1) / cpu[variant]:>9.1f}" if variant in cpu else f"{'':>9}"
        print(f"{variant:<16} {agreeing:>20} {every:>15.2%} {f'{near}/{len(differ)}':>9} {run.perplexity:>10.3f} "
              f"{verdict.perplexity_rise:>+8.2%} {run.tokens_per_second:>6.1f} {per_cpu}  {label}")
    print(f"\nfastest passing: {max(passing)[1]} (default today: {DEFAULT_PRECISION})")


if __name__ == "__main__":
    main()
