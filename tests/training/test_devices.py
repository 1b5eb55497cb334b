"""Training on the device it is given: `device: cpu` named explicitly is the default
path to the bit; batches follow the model's weights; bf16 autocast only on a GPU."""

from contextlib import nullcontext

import pytest
import torch
from safetensors.torch import load_file

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.training.distributed import Distributed, is_main_process
from pimpmyllama.training.loss import autocast_for
from pimpmyllama.training.packing import collate, one_per_row
from pimpmyllama.training.recipe import train
from pimpmyllama.training.tokenize import TokenizedExample


def test_a_run_on_the_cpu_named_explicitly_equals_the_default_run(train_config, pml_home, monkeypatch):
    monkeypatch.delenv("PML_DEVICE", raising=False)
    default = train(train_config(output="default", max_steps=2))
    explicit = train(train_config(output="explicit", max_steps=2, device="cpu"))
    a = load_file(str(pml_home / "adapters" / "default" / "adapter_model.safetensors"))
    b = load_file(str(pml_home / "adapters" / "explicit" / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and len(a) > 0
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert explicit.metrics["after"] == default.metrics["after"]


def test_cuda_where_there_is_none_is_refused_in_one_line(train_config, pml_home, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InvalidInputError, match="no CUDA GPU"):
        train(train_config(device="cuda"))
    assert not (pml_home / "adapters" / "t1").exists()


def test_a_batch_moves_to_a_device_whole():
    rows = one_per_row([TokenizedExample([1, 2, 3], [-100, 2, 3], "a"), TokenizedExample([4, 5], [-100, 5], "b")])
    batch = collate(rows, 0)
    assert batch.to(torch.device("cpu")) is batch  # already there: no copy
    moved = batch.to(torch.device("meta"))
    assert {t.device.type for t in (moved.input_ids, moved.position_ids, moved.attention_mask, moved.targets)} == {"meta"}
    assert (moved.tokens, moved.trained_tokens) == (batch.tokens, batch.trained_tokens)


def test_bf16_autocast_on_a_gpu_only():
    assert isinstance(autocast_for(torch.device("cpu")), nullcontext)
    on_gpu = autocast_for(torch.device("cuda", 1))
    assert isinstance(on_gpu, torch.autocast) and (on_gpu.device, on_gpu.fast_dtype) == ("cuda", torch.bfloat16)


def test_each_launched_process_reduces_on_its_own_gpu(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert Distributed.from_env(torch.device("cuda", 3)).device_ids == [3]  # DDP's device_ids
    assert Distributed.from_env().device_ids is None
    monkeypatch.setenv("RANK", "1")
    assert not is_main_process()
    monkeypatch.setenv("RANK", "0")
    assert is_main_process()

