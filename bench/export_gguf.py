"""Our GGUF export of the default model, run in llama.cpp (llama-cpp-python) against our
engine at fp32, in the same run:
  - greedy continuation of 10 fixed chat prompts: how many agree with ours for their
    first 16 tokens (guard at f16: at least 9 of 10);
  - perplexity on the reference text (CPython's LICENSE.txt, as bench/precision.py and
    `pml train` use it), windows of 512 tokens (guard at f16: within 1 % of ours);
  - a LoRA fine-tune that teaches the model to stop after a short answer (the e2e
    stop test's data and measure), exported with --format gguf-lora: in llama.cpp,
    base GGUF + LoRA stops as our engine with the adapter does, the base GGUF alone
    does not.
Both sides get the same token ids, so tokenization is not what is compared.

    python bench/export_gguf.py [--llama-python VENV/bin/python] [--out DIR]
                                [--quants f16,q8_0,q4_1] [--tokens 2048] [--no-lora] [--adapter NAME]

llama-cpp-python runs in the interpreter given by --llama-python (default: this one, if
it imports llama_cpp); this script is its worker (--worker JOB.json).
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPTS = [
    "When does the post office usually open?", "Write a haiku about autumn.", "What is the capital of France?",
    "Explain what a list is in Python.", "Give me three tips to sleep better.", "How many legs does a spider have?",
    "What is photosynthesis?", "Translate 'good morning' into Spanish.", "Why is the sky blue?",
    "Suggest a name for a small bakery.",
]
WINDOW = 512
AGREE_TOKENS = 16
STOP_TOKENS = 32
HELD_OUT = 20  # stop-test prompts kept out of training, as tests/e2e/test_finetuning.py keeps them
DATASET = Path(__file__).parents[1] / "examples" / "datasets" / "qa_completion.jsonl"


# --- the llama.cpp side (runs under --llama-python; stdlib, numpy and llama_cpp only) ---

def _greedy(llm, prompt: list[int], n: int, ends: set[int]) -> list[int]:
    import numpy as np

    llm.reset()
    llm.eval(prompt)
    out: list[int] = []
    while len(out) < n:
        token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        if token in ends:
            break
        out.append(token)
        llm.eval([token])
    return out


def _perplexity(llm, ids: list[int]) -> float:
    import numpy as np

    total, count = 0.0, 0
    for start in range(0, len(ids) - 1, WINDOW):
        chunk = ids[start:start + WINDOW + 1]
        llm.reset()
        llm.eval(chunk[:-1])
        logits = np.asarray(llm.scores[:len(chunk) - 1], dtype=np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        logprobs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        total -= float(logprobs[np.arange(len(chunk) - 1), chunk[1:]].sum())
        count += len(chunk) - 1
    return math.exp(total / count)


def worker(job_path: str) -> None:
    from llama_cpp import Llama

    job = json.loads(Path(job_path).read_text())
    llm = Llama(model_path=job["gguf"], lora_path=job.get("lora"), n_ctx=WINDOW + 64, n_threads=2,
                n_threads_batch=2, logits_all=True, verbose=False)
    ends = set(job["ends"])
    result = {"greedy": [_greedy(llm, p, job["new_tokens"], ends) for p in job["prompts"]]}
    if job.get("reference"):
        result["perplexity"] = _perplexity(llm, job["reference"])
    print(json.dumps(result))


def run_llama(python: str, job: dict) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(job, f)
    try:
        done = subprocess.run([python, __file__, "--worker", f.name], capture_output=True, text=True, check=True)
    except subprocess.CalledProcessError as exc:
        sys.exit(f"llama.cpp worker failed:\n{exc.stderr[-2000:]}")
    finally:
        os.unlink(f.name)
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- our side ---

def our_side(tokens: int):
    from pimpmyllama.generation.engine import Engine, GenerationParams
    from pimpmyllama.generation.guard import decode_pass
    from pimpmyllama.generation.sampling import SamplingParams
    from pimpmyllama.models.defaults import DEFAULT_MODEL
    from pimpmyllama.models.refs import resolve_model_folder
    from pimpmyllama.training.perplexity import default_general_text

    name, folder = resolve_model_folder(DEFAULT_MODEL)
    engine = Engine.load(name, folder, precision="fp32")
    reference = engine.tokenizer.encode(default_general_text().read_text(encoding="utf-8"))[:tokens + 1]
    prompts = [engine.chat_format().encode([{"role": "user", "content": p}]) for p in PROMPTS]
    params = GenerationParams(max_new_tokens=AGREE_TOKENS, sampling=SamplingParams(temperature=0, repeat_penalty=1.0))
    greedy = [engine.generate(ids, params, 512).run().tokens for ids in prompts]
    return engine, {"reference": reference, "prompts": prompts, "greedy": greedy,
                    "perplexity": decode_pass(engine.backend, reference, WINDOW).perplexity,
                    "ends": sorted(engine.tokenizer.end_token_ids)}


def stop_rate(replies: list[list[int]]) -> tuple[float, float]:
    """(share of replies that ended before the token limit, mean reply length)."""
    return (sum(len(r) < STOP_TOKENS for r in replies) / len(replies),
            sum(len(r) for r in replies) / len(replies))


def lora_side(adapter: str, out: Path, python: str, base_gguf: Path) -> list[tuple[str, float, float]]:
    from pimpmyllama import api
    from pimpmyllama.generation.engine import Engine, GenerationParams
    from pimpmyllama.generation.sampling import SamplingParams
    from pimpmyllama.models.adapters import AdapterStore
    from pimpmyllama.models.defaults import DEFAULT_MODEL
    from pimpmyllama.models.refs import resolve_model_folder
    from pimpmyllama.training.config import TrainConfig
    from pimpmyllama.training.recipe import train

    rows = [json.loads(line) for line in DATASET.read_text().splitlines()]
    held, rest = rows[:HELD_OUT], rows[HELD_OUT:]
    store = AdapterStore()
    if not store.exists(adapter):
        data = out / "stop-train.jsonl"
        data.write_text("\n".join(json.dumps(r) for r in rest) + "\n")
        t0 = time.perf_counter()
        train(TrainConfig.model_validate({"data": [str(data)], "output": adapter, "epochs": 1, "max_length": 128,
                                          "learning_rate": 1e-3, "eval_split": 0.0, "save_steps": 10_000}))
        print(f"  trained LoRA {adapter} in {time.perf_counter() - t0:.0f} s", flush=True)
    lora = out / f"{adapter}.gguf"
    if not lora.exists():
        api.export(f"{DEFAULT_MODEL}+{adapter}", lora, format="gguf-lora")
    name, folder = resolve_model_folder(DEFAULT_MODEL)
    ours_tuned = Engine.load(name, folder, store.folder(adapter), precision="fp32")
    prompts = [ours_tuned.tokenizer.encode(r["prompt"], add_special_tokens=True) for r in held]
    params = GenerationParams(max_new_tokens=STOP_TOKENS, sampling=SamplingParams(temperature=0, repeat_penalty=1.0))
    ours = [ours_tuned.generate(p, params, 512).run().tokens for p in prompts]
    ours_base_engine = Engine.load(name, folder, precision="fp32")
    ours_base = [ours_base_engine.generate(p, params, 512).run().tokens for p in prompts]
    if not base_gguf.exists():
        api.export(DEFAULT_MODEL, base_gguf, format="gguf")
    job = {"gguf": str(base_gguf), "prompts": prompts, "ends": sorted(ours_tuned.tokenizer.end_token_ids),
           "new_tokens": STOP_TOKENS}
    base = run_llama(python, job)["greedy"]
    with_lora = run_llama(python, {**job, "lora": str(lora)})["greedy"]
    same = sum(a == b for a, b in zip(ours, with_lora))
    print(f"  replies identical, ours + adapter vs llama.cpp + GGUF LoRA: {same} of {len(prompts)}", flush=True)
    return [("ours fp32 base", *stop_rate(ours_base)), ("ours fp32 + adapter", *stop_rate(ours)),
            ("llama.cpp f16 GGUF", *stop_rate(base)), ("llama.cpp f16 GGUF + GGUF LoRA", *stop_rate(with_lora))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--llama-python", default=sys.executable, help="a Python that imports llama_cpp")
    parser.add_argument("--out", type=Path, default=None, help="folder for the GGUFs (kept; reused if present)")
    parser.add_argument("--quants", default="f16,q8_0,q4_1", help="empty: only the LoRA measure")
    parser.add_argument("--tokens", type=int, default=2048, help="tokens of the reference text")
    parser.add_argument("--adapter", default="bench-gguf-stop", help="the stop LoRA (trained if absent)")
    parser.add_argument("--no-lora", action="store_true")
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker)
    check = subprocess.run([args.llama_python, "-c", "import llama_cpp"], capture_output=True)
    if check.returncode:
        sys.exit(f"{args.llama_python} cannot import llama_cpp: give --llama-python")

    from pimpmyllama.models.defaults import DEFAULT_MODEL

    out = args.out or Path(tempfile.mkdtemp(prefix="export-gguf-"))
    out.mkdir(parents=True, exist_ok=True)
    if args.quants:
        quant_side(args, out)
    if not args.no_lora:
        print(f"\nstop LoRA, {HELD_OUT} held-out prompts, greedy, at most {STOP_TOKENS} tokens:")
        print(f"{'run':<32} {'stopped':>8} {'mean tokens':>11}")
        for label, rate, mean in lora_side(args.adapter, out, args.llama_python, out / f"{DEFAULT_MODEL}-f16.gguf"):
            print(f"{label:<32} {rate:>8.0%} {mean:>11.1f}")


def quant_side(args, out: Path) -> None:
    from pimpmyllama import api
    from pimpmyllama.models.defaults import DEFAULT_MODEL

    t0 = time.perf_counter()
    _, ours = our_side(args.tokens)
    print(f"  ours (fp32): {time.perf_counter() - t0:.0f} s", flush=True)
    rows = []
    for quant in args.quants.split(","):
        path = out / f"{DEFAULT_MODEL}-{quant}.gguf"
        t0 = time.perf_counter()
        if not path.exists():
            api.export(DEFAULT_MODEL, path, format="gguf", quant=quant)
        exported = time.perf_counter() - t0
        result = run_llama(args.llama_python, {"gguf": str(path), "prompts": ours["prompts"], "ends": ours["ends"],
                                               "new_tokens": AGREE_TOKENS, "reference": ours["reference"]})
        agree = sum(a[:AGREE_TOKENS] == b[:AGREE_TOKENS] for a, b in zip(result["greedy"], ours["greedy"]))
        rows.append((quant, path.stat().st_size / 2 ** 20, exported, agree, result["perplexity"]))
        print(f"  {quant}: exported in {exported:.0f} s, measured", flush=True)
    print(f"\nreference text: {len(ours['reference']) - 1} tokens, windows of {WINDOW}; "
          f"ours fp32 perplexity {ours['perplexity']:.3f}")
    print(f"{'GGUF':<6} {'MiB':>6} {'export s':>8} {'agree 16 tok':>12} {'perplexity':>10} {'vs ours':>8}")
    for quant, mib, exported, agree, ppl in rows:
        print(f"{quant:<6} {mib:>6.0f} {exported:>8.0f} {agree:>9}/{len(PROMPTS)} {ppl:>10.3f} "
              f"{ppl / ours['perplexity'] - 1:>+8.2%}")


if __name__ == "__main__":
    main()
