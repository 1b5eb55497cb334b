"""The quality guard for the engine's precisions, on the real default model.

One pass per precision over a real text already on the machine (CPython's
LICENSE.txt, whose first part is the history of Python in prose), on the decode path
— one token at a time, as generated tokens are — in windows of 512 tokens
(generation/guard.py). Against fp32's pass over the same tokens:
  - agreement: the share of the positions where fp32 has a clear choice (its two
    most likely tokens NEAR_TIE logits apart or more, generation/guard.py) at which the
    most likely next token is fp32's; and over all positions, how many disagree and
    how many of those are near-ties in fp32 itself;
  - perplexity, and its rise over fp32's;
  - decode tokens/s of those steps (wall clock), and tokens per CPU-second (the
    least noisy speed figure on a shared machine with --threads 1).
Each precision's guard (generation/precision.py): at int8 (and bf16) agreement on the
clear positions >= 98 % and perplexity <= +1 %; at int4 >= 95 % and <= +5 %. The fastest precision
that passes is the one that should be the default.

`--grids` adds 8-bit weight grids measured by quality alone: the weights of every
linear layer (the head included) rounded to the grid and restored in fp32, products
in fp32 — "row" (one scale per output row, as int8 holds them) and "g32" (one fp16
scale per group of 32 inputs, llama.cpp's Q8_0). Their speed is not the format's.

    python bench/precision.py [--tokens 2048] [--precisions fp32,bf16,int8,int4]
                              [--grids row,g32] [--threads 1] [--model PATH]
"""

import argparse
import time

import torch

GRID_GROUP = 32


def row_grid(weight: torch.Tensor) -> torch.Tensor:
    from pimpmyllama.generation.quant import quantize_int8

    q, scales = quantize_int8(weight)
    return q.float() * scales[:, None]


def group_grid(weight: torch.Tensor, group: int = GRID_GROUP) -> torch.Tensor:
    """Q8_0: d = max|w| / 127 per group, kept as fp16; q = round(w / d) against the exact d."""
    n, k = weight.shape
    w = weight.float().reshape(n, k // group, group)
    d = w.abs().amax(-1, keepdim=True) / 127
    q = torch.round(w * torch.where(d > 0, 1 / d, 0)).clamp(-127, 127)
    return (q * d.half().float()).reshape(n, k)


GRIDS = {"row": row_grid, "g32": group_grid}


def on_grid(model, grid) -> None:
    """Every linear layer of an fp32 model (the head included) replaced by its weights
    rounded to `grid`, still fp32 (before the first step traces them)."""
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


def main() -> None:
    from pimpmyllama.generation.guard import NEAR_TIE, decode_pass, judge
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

    reference = passes["fp32"]
    near_ties = sum(m < NEAR_TIE for m in reference.margins)
    print(f"\n{len(reference.top1)} positions ({near_ties} near-ties in fp32: its top two within {NEAR_TIE} "
          f"logits), torch threads {torch.get_num_threads()}")
    print(f"{'precision':<10} {'clear agreement':>20} {'ties/diff':>9} {'perplexity':>10} {'vs fp32':>8} {'tok/s':>6} "
          f"{'tok/CPU-s':>9}  guard")
    passing = []
    for variant, run in passes.items():
        verdict = judge(variant.split("-")[0], run, reference)
        label = {None: "reference", True: "pass", False: "fail"}[verdict.passed]
        if variant.startswith("int8-"):
            label += " (fake-quant: quality only)"
        elif verdict.passed is not False:
            passing.append((run.tokens_per_second, variant))
        differ = [i for i, (a, b) in enumerate(zip(run.top1, reference.top1)) if a != b]
        clear_agreeing = round(verdict.agreement * verdict.clear)
        agreeing = f"{clear_agreeing}/{verdict.clear} ({verdict.agreement:.2%})"
        near = sum(reference.margins[i] < NEAR_TIE for i in differ)
        print(f"{variant:<10} {agreeing:>20} {f'{near}/{len(differ)}':>9} {run.perplexity:>10.3f} "
              f"{verdict.perplexity_rise:>+8.2%} "
              f"{run.tokens_per_second:>6.1f} {len(run.top1) / cpu[variant]:>9.1f}  {label}")
    print(f"\nfastest passing: {max(passing)[1]} (default today: {DEFAULT_PRECISION})")


if __name__ == "__main__":
    main()
