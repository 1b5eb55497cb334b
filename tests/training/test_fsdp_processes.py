"""The training loop with its model sharded by FSDP2 over two CPU processes (gloo, under
torchrun), through the wrapping an `accelerate launch` with the FSDP config uses: it
trains like one process with the whole batch, writes a complete adapter and model, and
resumes from its checkpoint."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from pimpmyllama.training.config import TrainConfig
from pimpmyllama.training.recipe import train

WORKER = Path(__file__).parent / "fsdp_worker.py"


def losses(pml_home, name):
    return [json.loads(line)["loss"] for line in (pml_home / "runs" / name / "metrics.jsonl").read_text().splitlines()]


def test_sharded_training_matches_one_process_and_resumes(stored_tiny, pml_home, chat_data, tiny_model, short_text):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    common = {"from": "tiny", "data": [str(chat_data)], "max_steps": 5, "save_steps": 2, "max_length": 64,
              "learning_rate": 1e-2, "eval_split": 0, "lora_dropout": 0, "gradient_accumulation": 2,
              "general_text": str(short_text)}
    train(TrainConfig.model_validate({**common, "output": "single", "batch_size": 4}))
    train(TrainConfig.model_validate({**common, "output": "single-full", "batch_size": 4, "method": "full"}))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(WORKER),
               json.dumps({**common, "batch_size": 2})]
    result = subprocess.run(command, env={**os.environ, "PML_HOME": str(pml_home), "OMP_NUM_THREADS": "1"},
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]

    # tolerance: the same rows, split across two processes; the sums differ in float order only
    assert losses(pml_home, "fsdp") == pytest.approx(losses(pml_home, "single"), rel=1e-4)
    assert losses(pml_home, "fsdp")[-1] < losses(pml_home, "fsdp")[0]
    single = load_file(str(pml_home / "adapters" / "single" / "adapter_model.safetensors"))
    sharded = load_file(str(pml_home / "adapters" / "fsdp" / "adapter_model.safetensors"))
    assert sharded.keys() == single.keys() and len(single) == 2 * 2 * 7  # 2 layers x 7 linear layers x (A, B)
    for name in single:
        assert sharded[name].shape == single[name].shape
        assert (sharded[name] - single[name]).abs().max() <= 1e-4, name
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_model)),
                                           str(pml_home / "adapters" / "fsdp"))
    loaded = {n: p for n, p in peft_model.named_parameters() if "lora_" in n}
    assert len(loaded) == len(single) and all(torch.isfinite(p).all() for p in loaded.values())

    # interrupted during step 4 (a checkpoint of 3 steps), resumed: as if never stopped
    assert "rank 0: interrupted at step 3 of 5" in result.stdout
    assert (pml_home / "runs" / "cut" / "checkpoints" / "step-0000003" / "state.pt").exists()
    resumed = load_file(str(pml_home / "adapters" / "cut" / "adapter_model.safetensors"))
    for name in sharded:
        # tolerance: the same operations in the same order; only float summation order may differ
        assert (resumed[name] - sharded[name]).abs().max() <= 1e-6, name
    assert losses(pml_home, "cut") == pytest.approx(losses(pml_home, "fsdp"), rel=1e-6)

    # a full fine-tune: every weight gathered whole into the saved model
    full = load_file(str(pml_home / "models" / "fsdp-full" / "model.safetensors"))
    full_single = load_file(str(pml_home / "models" / "single-full" / "model.safetensors"))
    assert full.keys() == full_single.keys()
    for name in full_single:
        assert (full[name] - full_single[name]).abs().max() <= 1e-4, name
