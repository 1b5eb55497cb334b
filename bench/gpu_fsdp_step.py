"""One FSDP training step's time, run by bench/gpu.py under `accelerate launch` with the
shipped FSDP config (src/pimpmyllama/training/accelerate/fsdp.yaml):
a full fine-tune of the model in FOLDER (fp32 weights, accelerate's bf16 mixed precision),
ROWS x LENGTH random tokens per process, AdamW; prints one JSON line on the main process.

    accelerate launch --config_file FSDP_YAML ... bench/gpu_fsdp_step.py FOLDER STEPS ROWS LENGTH
"""

import json
import sys
import time

import torch
from accelerate import Accelerator
from transformers import AutoModelForCausalLM


def main() -> None:
    folder, steps, rows, length = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    accelerator = Accelerator()
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model.config.use_cache = False
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    model, optimizer = accelerator.prepare(model, optimizer)
    generator = torch.Generator().manual_seed(accelerator.process_index)
    ids = torch.randint(10, model.config.vocab_size - 10, (rows, length), generator=generator).to(accelerator.device)

    def step():
        loss = model(input_ids=ids, labels=ids).loss
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # warm-up
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / steps
    if accelerator.is_main_process:
        print(json.dumps({"step_s": seconds, "processes": accelerator.num_processes}))
    accelerator.end_training()


if __name__ == "__main__":
    main()
