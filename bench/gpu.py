"""The engine and training on a GPU: our engine's prefill and decode tokens/s (bf16, the
default model from the store) against transformers' own forward on the same GPU in the
same run, a LoRA training step of our recipe's loss (bf16 autocast), and an FSDP step
of accelerate over the same model (`accelerate launch`, bench/gpu_fsdp_step.py).

    python bench/gpu.py [--prompt 512] [--new-tokens 128] [--steps 10]

Without a CUDA GPU it prints one line and exits 0. `--device cpu` runs the same code on
the CPU with small sizes, to check the script itself where there is no GPU (its figures
mean nothing). Every timing is bracketed by torch.cuda.synchronize().
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device, fn) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def prompt(length: int, vocab: int) -> list[int]:
    import torch

    return torch.randint(10, vocab - 10, (length,), generator=torch.Generator().manual_seed(0)).tolist()


def prefill_and_decode(backend, device, ids: list[int], new_tokens: int) -> dict:
    """Prefill of `ids` (in the engine's chunks), then `new_tokens` greedy steps, each
    bringing its logits to the CPU as the sampler does; the second of two runs (the first
    warms up: kernels chosen, memory allocated)."""
    from pimpmyllama.generation.sequence import prefill

    def run():
        cache = backend.new_cache(len(ids) + new_tokens + 1)
        result = {}
        result["prefill_s"] = timed(device, lambda: result.update(logits=prefill(backend, cache, ids)[0]))
        token, pos = int(result["logits"].argmax()), len(ids)

        def decode():
            nonlocal token, pos
            for _ in range(new_tokens):
                token, pos = int(backend.forward([token], cache, pos).argmax()), pos + 1

        result["decode_s"] = timed(device, decode)
        return result

    run()
    r = run()
    return {"prefill": len(ids) / r["prefill_s"], "decode": new_tokens / r["decode_s"]}


def ours(folder: Path, device, ids: list[int], new_tokens: int) -> dict:
    from pimpmyllama.generation.engine import Engine

    engine = Engine.load(folder.name, folder, device=device)  # bf16 off the CPU (placement.py)
    return prefill_and_decode(engine.backend, device, ids, new_tokens)


def transformers_baseline(folder: Path, device, ids: list[int], new_tokens: int) -> dict:
    """transformers' own forward and cache, bf16 on the same device (our HFBackend: the model's
    forward called as is, logits to the CPU)."""
    import torch

    from pimpmyllama.generation.hf_backend import HFBackend

    return prefill_and_decode(HFBackend(folder, torch.bfloat16, device=device), device, ids, new_tokens)


def lora_step(folder: Path, device, rows: int, length: int, steps: int) -> dict:
    """Our recipe's LoRA model and loss (loss.batch_loss: the batch on the device, bf16 autocast on a
    GPU), rows × length tokens per step, AdamW; the mean of `steps` steps after one warm-up step."""
    import torch

    from pimpmyllama.training.config import TrainConfig
    from pimpmyllama.training.loss import CausalLMLoss, batch_loss
    from pimpmyllama.training.packing import collate, one_per_row
    from pimpmyllama.training.recipe import Base, build_model, causal_lm
    from pimpmyllama.training.tokenize import TokenizedExample

    config = TrainConfig(output="bench", max_length=length)
    model = build_model(Base(folder.name, folder, None), config).to(device)
    module = CausalLMLoss(causal_lm(model))
    trained = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=1e-4)
    vocab = causal_lm(model).config.vocab_size
    examples = [TokenizedExample(prompt(length, vocab), [-100] + prompt(length - 1, vocab), "bench") for _ in range(rows)]
    batch = collate(one_per_row(examples), 0)

    def step():
        loss = batch_loss(module, batch) / batch.trained_tokens
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    timed(device, step)
    seconds = timed(device, lambda: [step() for _ in range(steps)]) / steps
    return {"step_s": seconds, "trained_tokens_per_s": batch.trained_tokens / seconds}


def fsdp_step(folder: Path, steps: int, rows: int, length: int) -> dict:
    """accelerate launch of bench/gpu_fsdp_step.py on every GPU, with the FSDP config the
    package ships for training (FSDP2, bf16 mixed precision)."""
    import torch

    from pimpmyllama.training.accelerate import fsdp_config_path

    command = ["accelerate", "launch", "--config_file", str(fsdp_config_path()),
               "--num_processes", str(torch.cuda.device_count()),
               str(HERE / "gpu_fsdp_step.py"), str(folder), str(steps), str(rows), str(length)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {tail}", "command": " ".join(command)}
    return {**json.loads(lines[-1]), "command": " ".join(command)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (checks the script, small sizes)")
    parser.add_argument("--prompt", type=int, default=512)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--rows", type=int, default=4)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()

    import torch

    if args.device != "cpu" and not torch.cuda.is_available():
        print(f"no CUDA GPU here (torch {torch.__version__}, {'CUDA ' + torch.version.cuda if torch.version.cuda else 'a CPU build'}): nothing measured")
        return
    from pimpmyllama.devices import resolve_device
    from pimpmyllama.models.defaults import DEFAULT_MODEL
    from pimpmyllama.models.store import ModelStore

    device = resolve_device(args.device)
    if device.type == "cpu":  # a check of the script: small sizes
        args.prompt, args.new_tokens, args.rows, args.length, args.steps = 32, 4, 1, 32, 1
    folder = ModelStore().folder(DEFAULT_MODEL)
    ids = prompt(args.prompt, 49152)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (script check only)"
    print(f"{name} · torch {torch.__version__} · {DEFAULT_MODEL} · prompt {args.prompt} tokens, "
          f"{args.new_tokens} decoded · {time.strftime('%Y-%m-%d')}")
    mine, theirs = ours(folder, device, ids, args.new_tokens), transformers_baseline(folder, device, ids, args.new_tokens)
    print("| engine | prefill tok/s | decode tok/s |")
    print("|---|---:|---:|")
    print(f"| ours ({'bf16' if device.type == 'cuda' else 'default precision'}) | {mine['prefill']:,.0f} | {mine['decode']:,.1f} |")
    print(f"| transformers (bf16) | {theirs['prefill']:,.0f} | {theirs['decode']:,.1f} |")
    print(f"| ratio | {mine['prefill'] / theirs['prefill']:.2f}x | {mine['decode'] / theirs['decode']:.2f}x |")
    lora = lora_step(folder, device, args.rows, args.length, args.steps)
    print(f"\nLoRA step (r 8, all linear, {args.rows}x{args.length} tokens): {lora['step_s'] * 1000:.1f} ms, "
          f"{lora['trained_tokens_per_s']:,.0f} trained tokens/s")
    if device.type == "cuda":
        fsdp = fsdp_step(folder, args.steps, args.rows, args.length)
        if "error" in fsdp:
            print(f"FSDP step: failed ({fsdp['error']})\n  {fsdp['command']}")
        else:
            print(f"FSDP step (full fine-tune, {fsdp['processes']} GPU(s), {args.rows}x{args.length} tokens each): "
                  f"{fsdp['step_s'] * 1000:.1f} ms\n  {fsdp['command']}")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
