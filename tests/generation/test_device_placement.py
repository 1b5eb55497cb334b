"""The engine keeps a step on the device it was given: the weights, the KV cache, the
rope table, the token ids and every intermediate. Checked on `meta` (PyTorch's device
of shapes without values, which every machine has): a tensor made without the model's
device lands on the CPU and the recorder (tests/device_recorder.py) sees it."""

import pytest
import torch

from device_recorder import record
from pimpmyllama.errors import InvalidInputError
from pimpmyllama.generation.building import build_llama
from pimpmyllama.generation.engine import Engine
from pimpmyllama.generation.llama import LlamaSpec
from pimpmyllama.generation.loading import load_backend
from pimpmyllama.generation.placement import precision_on
from pimpmyllama.models.info import read_config
from pimpmyllama.models.weights import open_tensors

META = torch.device("meta")


def _meta_model(folder):
    with open_tensors(folder) as reader:
        return build_llama(LlamaSpec.from_config(read_config(folder)), reader.get, torch.float32, device=META)


def _steps(model):
    """A prefill, three decoding steps, a chunk after a cached prefix, and a batched
    step over two caches: every path a reply or the server takes."""
    outputs = []
    cache, other = model.new_cache(32), model.new_cache(16)
    outputs.append(model.forward([1, 2, 3, 4, 5], cache, 0))
    for pos in range(5, 8):
        outputs.append(model.forward([7], cache, pos))
    outputs.append(model.forward([3, 4, 5], cache, 8, all_logits=True))
    outputs.append(model.forward_batch([1, 2], [cache, other], [11, 0]))
    return outputs, (cache, other)


def test_the_recorder_sees_a_tensor_made_off_the_device():
    recorder = record(lambda: (torch.zeros(2, device=META) + 1, torch.arange(3)))
    assert recorder.off(META) == [("arange", torch.device("cpu"))]
    assert [name for name, _ in recorder.seen] == ["zeros", "add", "arange"]


def test_every_tensor_of_a_step_is_on_the_engines_device(tiny_model):
    model = _meta_model(tiny_model)
    result = {}
    recorder = record(lambda: result.update(zip(("outputs", "caches"), _steps(model))))
    assert recorder.error is None
    assert len(recorder.seen) > 400  # the whole forward was seen, not a corner of it
    assert recorder.off(META) == []
    assert [tuple(o.shape) for o in result["outputs"]] == [(384,), (384,), (384,), (384,), (3, 384), (2, 384)]
    assert {o.device for o in result["outputs"]} == {META}  # meta has no host copy; a GPU's logits come to the CPU
    assert {t.device for c in result["caches"] for t in (c.k, c.v)} == {META}
    assert model._rotations.device == META
    assert {t.device for block in model.layers for t in (block.attn_norm, block.qkv.product.weight)} == {META}
    assert model.head.product.weight is model.embed  # tied: one copy on the device


def test_the_check_fails_when_a_step_makes_its_inputs_off_the_device(tiny_model):
    model = _meta_model(tiny_model)
    model.device = torch.device("cpu")  # the weights stay on meta; the step's own tensors go astray
    recorder = record(lambda: _steps(model))
    assert ("tensor", torch.device("cpu")) in recorder.off(META)


def test_loading_for_another_device_takes_bf16_dense_weights_there(tiny_model):
    model = load_backend(tiny_model, device=META)  # what `--device cuda` loads, on meta
    assert model.device == META and not model.fused and not model.traced
    assert {block.qkv.product.weight.dtype for block in model.layers} == {torch.bfloat16}
    recorder = record(lambda: _steps(model))
    assert recorder.error is None and recorder.off(META) == []


def test_precisions_by_device():
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert precision_on(cpu, None, "int4").name == "int4"  # the CPU as before
    assert precision_on(cpu, "int8", "int4").name == "int8"
    assert precision_on(cuda, None, "int4").name == "bf16"
    assert precision_on(cuda, "fp32", "int4").name == "fp32"
    with pytest.raises(InvalidInputError, match=r"^precision int4 runs on the CPU only \(our int4 kernels\); "
                                                r"on cuda use bf16 or fp32, or --device cpu$"):
        precision_on(cuda, "int4", "int4")


def test_quantized_weights_are_not_built_off_the_cpu(tiny_model):
    with open_tensors(tiny_model) as reader, pytest.raises(ValueError, match="run on the CPU only"):
        build_llama(LlamaSpec.from_config(read_config(tiny_model)), reader.get, torch.bfloat16, 4, 8, device=META)


def test_cpu_named_explicitly_is_the_default_path_to_the_bit(tiny_model, monkeypatch):
    monkeypatch.delenv("PML_DEVICE", raising=False)
    ids = list(range(3, 40))
    default = Engine.load("tiny", tiny_model).next_token_logprobs(ids)
    explicit = Engine.load("tiny", tiny_model, device="cpu").next_token_logprobs(ids)
    assert torch.equal(default, explicit)


def test_cuda_where_there_is_none_is_refused_before_loading(tiny_model, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InvalidInputError, match="no CUDA GPU"):
        Engine.load("tiny", tiny_model, device="cuda")


def test_a_kv_cache_is_checked_against_the_gpus_free_memory(monkeypatch):
    from pimpmyllama.generation.kv_memory import KVCacheSize, check_kv_fits, device_memory

    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (3 << 30, 80 << 30))
    assert device_memory(torch.device("cpu")) is None  # the CPU: the system's available memory
    assert device_memory(torch.device("cuda", 0)) == 3 << 30
    size = KVCacheSize(num_ctx=1 << 20, layers=32, kv_heads=8, head_dim=128)  # 256 GiB
    with pytest.raises(InvalidInputError, match=r"does not fit: 3.00 GiB of memory is available; lower num_ctx$"):
        check_kv_fits(size, device_memory(torch.device("cuda", 0)))
