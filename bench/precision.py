"""The quality guard for the engine's precisions, on the real default model.

For each precision:
  - perplexity on a real text already on the machine (CPython's LICENSE.txt, whose
    first part is the history of Python in prose), computed on the decode path —
    one token at a time, as generated tokens are — in windows of 512 tokens;
  - on 20 fixed chat prompts, how many greedy continuations agree with fp32's for
    their first 32 tokens.
Guard: perplexity within 1 % of fp32 at int8 and 5 % at int4; int8 agrees on at
least 18 of 20 prompts.

    python bench/precision.py [--tokens 2048] [--precisions fp32,bf16,int8,int4]
"""

import argparse
import math
import time

import torch

PROMPTS = [
    "When does the post office usually open?", "Write a haiku about autumn.", "What is the capital of France?",
    "Explain what a list is in Python.", "Give me three tips to sleep better.", "How many legs does a spider have?",
    "What is photosynthesis?", "Translate 'good morning' into Spanish.", "Why is the sky blue?",
    "Suggest a name for a small bakery.", "What does a librarian do?", "How do I boil an egg?",
    "What is the difference between weather and climate?", "Name three planets of the solar system.",
    "Write one sentence about the sea.", "What is 12 times 7?", "Who wrote Romeo and Juliet?",
    "What should I pack for a day of hiking?", "Describe a cat in two sentences.", "What is a verb?",
]


def decode_path_perplexity(model, ids: list[int], window: int = 512) -> float:
    total, count = 0.0, 0
    for start in range(0, len(ids) - 1, window):
        chunk = ids[start : start + window + 1]
        cache = model.new_cache(len(chunk))
        for position in range(len(chunk) - 1):
            logits = model.forward([chunk[position]], cache, position)
            total -= float(torch.log_softmax(logits, dim=-1)[chunk[position + 1]])
            count += 1
    return math.exp(total / count)


def greedy_tokens(engine, prompt: str, n: int) -> list[int]:
    from pimpmyllama.generation.engine import GenerationParams
    from pimpmyllama.generation.sampling import SamplingParams

    ids = engine.chat_format().encode([{"role": "user", "content": prompt}])
    engine._cache = None
    params = GenerationParams(max_new_tokens=n, sampling=SamplingParams(temperature=0, repeat_penalty=1.0))
    return engine.generate(ids, params, 2048).run().tokens


def main() -> None:
    from pimpmyllama.generation.engine import Engine
    from pimpmyllama.models.defaults import DEFAULT_MODEL
    from pimpmyllama.models.refs import resolve_model_folder
    from pimpmyllama.training.perplexity import default_general_text

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--tokens", type=int, default=2048, help="tokens of the reference text")
    parser.add_argument("--precisions", default="fp32,bf16,int8,int4")
    parser.add_argument("--new-tokens", type=int, default=32)
    args = parser.parse_args()

    name, folder = resolve_model_folder(args.model)
    results = {}
    for precision in args.precisions.split(","):
        t0 = time.perf_counter()
        engine = Engine.load(name, folder, precision=precision)
        ids = engine.tokenizer.encode(default_general_text().read_text(encoding="utf-8"))[: args.tokens + 1]
        ppl = decode_path_perplexity(engine.backend, ids)
        replies = [greedy_tokens(engine, p, args.new_tokens) for p in PROMPTS]
        results[precision] = (ppl, replies)
        print(f"  {precision}: done in {time.perf_counter() - t0:.0f} s", flush=True)
    ref_ppl, ref_replies = results["fp32"]
    print(f"\n{'precision':<10} {'perplexity':>10} {'vs fp32':>8} {'prompts agreeing (32 tokens)':>29}")
    for precision, (ppl, replies) in results.items():
        agree = sum(r[: args.new_tokens] == f[: args.new_tokens] for r, f in zip(replies, ref_replies))
        print(f"{precision:<10} {ppl:>10.3f} {ppl / ref_ppl - 1:>+8.2%} {agree:>22}/{len(PROMPTS)}")


if __name__ == "__main__":
    main()
