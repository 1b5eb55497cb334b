"""`--device` on every command that loads a model or an embedder: a device that is not
there, or not a device, is one line and exit 2 before anything loads or is written."""

import os
import subprocess
import sys

import pytest
from cli_run import assert_one_line_error

from pimpmyllama.devices import DEVICE_CHOICES

COMMANDS = {
    "ask": ["ask", "hello"],
    "chat": ["chat"],
    "serve": ["serve", "--port", "1"],
    "compare": ["compare", "spec.yml"],
    "merge": ["merge", "recipe.yml", "-o", "merged"],
    "kb add": ["kb", "add", "notes", "notes.txt"],
    "kb search": ["kb", "search", "notes", "post office"],
    "kb eval": ["kb", "eval", "notes", "questions.jsonl"],
    "train": ["train", "sft", "data.jsonl", "-o", "tuned"],
    "extract-lora": ["extract-lora", "tuned", "--base", "base", "-o", "lora"],
    "eval ppl": ["eval", "ppl", "base", "notes.txt"],
}


def pml_without_gpus(*args, home, **env):
    # CUDA_VISIBLE_DEVICES="" hides any GPU, so these hold on a GPU machine too
    env = {**os.environ, "PML_HOME": str(home), "CUDA_VISIBLE_DEVICES": "", **env}
    return subprocess.run([sys.executable, "-m", "pimpmyllama", *args], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.mark.parametrize("command", COMMANDS)
def test_cuda_without_a_gpu_is_one_line(command, tmp_path):
    result = pml_without_gpus(*COMMANDS[command], "--device", "cuda", home=tmp_path / "home")
    assert_one_line_error(result, "device 'cuda' asked for, but PyTorch sees no CUDA GPU here", "use --device cpu")
    assert not (tmp_path / "home" / "models" / "merged").exists() and not (tmp_path / "home" / "adapters" / "tuned").exists()


@pytest.mark.parametrize("command", ["ask", "train"])
def test_an_unknown_device_is_one_line_with_the_known_ones(command, tmp_path):
    result = pml_without_gpus(*COMMANDS[command], "--device", "tpu", home=tmp_path)
    assert_one_line_error(result, "unknown device 'tpu' (known: auto, cpu, cuda, cuda:N)")


def test_pml_device_in_the_environment_is_the_default(tmp_path):
    result = pml_without_gpus(*COMMANDS["ask"], "--no-service", home=tmp_path, PML_DEVICE="cuda")
    assert_one_line_error(result, "no CUDA GPU")


def test_the_help_names_the_resolvers_choices(tmp_path):
    text = pml_without_gpus("ask", "--help", home=tmp_path).stdout
    assert all(choice in text for choice in DEVICE_CHOICES)
