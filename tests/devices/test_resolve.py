"""The one device resolver: names, the defaults in force, the launcher's rank, refusals."""

import pytest
import torch

from pimpmyllama import devices
from pimpmyllama.errors import InvalidInputError


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    monkeypatch.delenv("PML_DEVICE", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    devices.use_device(None)
    yield
    devices.use_device(None)


def _no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def _cuda(monkeypatch, count: int):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def test_auto_is_cpu_without_a_gpu(monkeypatch):
    _no_cuda(monkeypatch)
    assert devices.resolve_device("auto") == torch.device("cpu")
    assert devices.resolve_device(None) == torch.device("cpu")  # auto is the default


def test_auto_is_the_gpu_where_there_is_one(monkeypatch):
    _cuda(monkeypatch, 1)
    assert devices.resolve_device("auto") == torch.device("cuda", 0)
    assert devices.resolve_device("cpu") == torch.device("cpu")


def test_a_launched_rank_takes_its_own_gpu(monkeypatch):
    _cuda(monkeypatch, 4)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert devices.resolve_device("cuda") == torch.device("cuda", 3)
    assert devices.resolve_device("auto") == torch.device("cuda", 3)
    assert devices.resolve_device("cuda:1") == torch.device("cuda", 1)  # named explicitly: as named


def test_a_launched_rank_without_gpus_stays_on_the_cpu(monkeypatch):
    _no_cuda(monkeypatch)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert devices.resolve_device(None) == torch.device("cpu")


def test_defaults_in_force_option_then_environment_then_auto(monkeypatch):
    _cuda(monkeypatch, 2)
    monkeypatch.setenv("PML_DEVICE", "cpu")
    assert devices.resolve_device(None) == torch.device("cpu")
    devices.use_device("cuda:1")
    assert devices.resolve_device(None) == torch.device("cuda", 1)
    assert devices.resolve_device("cpu") == torch.device("cpu")  # an explicit name wins
    devices.use_device(None)
    assert devices.resolve_device(None) == torch.device("cpu")


def test_cuda_without_a_gpu_is_one_clear_line(monkeypatch):
    _no_cuda(monkeypatch)
    with pytest.raises(InvalidInputError, match=r"^device 'cuda' asked for, but PyTorch sees no CUDA GPU here .*use --device cpu$"):
        devices.resolve_device("cuda")
    with pytest.raises(InvalidInputError, match="no CUDA GPU"):
        devices.use_device("cuda")  # refused when set, before anything loads
    assert devices.requested_device() == "auto"


def test_a_gpu_index_beyond_those_present_is_refused(monkeypatch):
    _cuda(monkeypatch, 2)
    with pytest.raises(InvalidInputError, match=r"^device cuda:2 asked for, but PyTorch sees 2 GPU\(s\)$"):
        devices.resolve_device("cuda:2")


@pytest.mark.parametrize("name", ["gpu", "tpu", "cpu:0", "auto:1", "cuda:", "cuda:x", ""])
def test_unknown_names_are_refused_with_the_known_ones(name):
    with pytest.raises(InvalidInputError, match=r"^unknown device .* \(known: auto, cpu, cuda, cuda:N\)$"):
        devices.resolve_device(name)


def test_a_torch_device_passes_through():
    assert devices.resolve_device(torch.device("meta")) == torch.device("meta")
