"""Training as separate processes: killed and resumed, interrupted with Ctrl-C, and
under torchrun with two processes (DDP on gloo)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file

COMMON = ["--from", "tiny", "--max-steps", "20", "--save-steps", "5", "--batch-size", "2", "--max-length", "64",
          "--lr", "0.01", "--eval-split", "0"]


@pytest.fixture(autouse=True)
def _short_general_text(short_text, monkeypatch):
    """Every run's general reference text: a few sentences (the default's perplexity would
    take most of these runs' time)."""
    monkeypatch.setattr(sys.modules[__name__], "GENERAL", ["--general-text", str(short_text)])


GENERAL: list[str] = []


def env(pml_home, threads=None):
    e = {**os.environ, "PML_HOME": str(pml_home)}
    if threads:
        e["OMP_NUM_THREADS"] = str(threads)
    return e


def train_cmd(data, output, *extra):
    return [sys.executable, "-m", "pimpmyllama", "train", "sft", str(data), "-o", output, *COMMON, *GENERAL, *extra]


def adapter(pml_home, name):
    return load_file(str(pml_home / "adapters" / name / "adapter_model.safetensors"))


def losses(pml_home, name):
    return [json.loads(line)["loss"] for line in (pml_home / "runs" / name / "metrics.jsonl").read_text().splitlines()]


def wait_for(path, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline and not path.exists():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "finished early"
        time.sleep(0.01)
    assert path.exists()


def test_killed_then_resumed_equals_uninterrupted(stored_tiny, pml_home, chat_data):
    subprocess.run(train_cmd(chat_data, "whole"), env=env(pml_home), check=True, capture_output=True)
    proc = subprocess.Popen(train_cmd(chat_data, "cut"), env=env(pml_home), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for(pml_home / "runs" / "cut" / "checkpoints" / "step-0000010" / "state.pt", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (pml_home / "adapters" / "cut").exists()  # nothing half-written in the store
    resumed = subprocess.run(train_cmd(chat_data, "cut", "--resume"), env=env(pml_home), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    whole, cut = adapter(pml_home, "whole"), adapter(pml_home, "cut")
    assert whole.keys() == cut.keys()
    for name in whole:
        # tolerance: the same operations in the same order; only float summation order may differ
        assert (whole[name] - cut[name]).abs().max() <= 1e-6, name
    assert losses(pml_home, "cut") == pytest.approx(losses(pml_home, "whole"), rel=1e-6)
    assert len(losses(pml_home, "cut")) == 20  # steps logged once each, none twice


def test_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(stored_tiny, pml_home, chat_data):
    # A shell that starts a job in the background ignores SIGINT for it, and the
    # child would inherit that: give it the terminal's default, as a user's run has.
    proc = subprocess.Popen(train_cmd(chat_data, "intr", "--max-steps", "400"), env=env(pml_home),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for(pml_home / "runs" / "intr" / "checkpoints" / "step-0000005" / "state.pt", proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: interrupted at step ") and "resume with the same command and --resume" in last
    step = int(last.split("at step ")[1].split()[0])
    assert (pml_home / "runs" / "intr" / "checkpoints" / f"step-{step:07d}" / "state.pt").exists()
    assert not (pml_home / "adapters" / "intr").exists()


def test_resume_without_a_checkpoint_is_an_error(stored_tiny, pml_home, chat_data):
    result = subprocess.run(train_cmd(chat_data, "never", "--resume"), env=env(pml_home), capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: nothing to resume: run 'never' has no checkpoint"


def test_two_processes_with_half_the_batch_match_one_with_all_of_it(stored_tiny, pml_home, chat_data):
    one = train_cmd(chat_data, "single", "--batch-size", "4", "--max-steps", "5", "--lora-dropout", "0")
    subprocess.run(one, env=env(pml_home), check=True, capture_output=True)
    two = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "pimpmyllama", "train", "sft", str(chat_data), "-o", "ddp", *COMMON, *GENERAL, "--batch-size", "2",
           "--max-steps", "5", "--lora-dropout", "0"]
    result = subprocess.run(two, env=env(pml_home, threads=1), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    # tolerance: the same rows, split across two processes; the sums differ in float order only
    assert losses(pml_home, "ddp") == pytest.approx(losses(pml_home, "single"), rel=1e-4)
    single, ddp = adapter(pml_home, "single"), adapter(pml_home, "ddp")
    for name in single:
        assert (single[name] - ddp[name]).abs().max() <= 1e-4, name
