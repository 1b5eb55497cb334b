"""Merging computes each tensor on the device it is given: `cpu` named explicitly is the
default path to the bit, and the sparsifiers' masks are made where the deltas are (the
random ones drawn on the CPU, from the seeded generator, so every device gets the same)."""

import pytest
import torch
from merge_helpers import load_tensors, write_recipe

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.merging import sparsify
from pimpmyllama.merging.lora import extract_lora
from pimpmyllama.merging.merge import merge_to_store

META = torch.device("meta")


def _della(trio):
    return {"merge_method": "della", "base_model": str(trio[0]),
            "models": [{"model": str(trio[1]), "parameters": {"weight": 0.5, "density": 0.5, "epsilon": 0.1}},
                       {"model": str(trio[2]), "parameters": {"weight": 0.5, "density": 0.5, "epsilon": 0.1}}]}


def test_a_merge_on_the_cpu_named_explicitly_equals_the_default(trio, pml_home, tmp_path, monkeypatch):
    monkeypatch.delenv("PML_DEVICE", raising=False)
    recipe = write_recipe(tmp_path, _della(trio))
    default = load_tensors(merge_to_store(recipe, "default", seed=3))
    explicit = load_tensors(merge_to_store(recipe, "explicit", seed=3, device="cpu"))
    assert default.keys() == explicit.keys() and len(default) > 10
    assert all(torch.equal(default[k], explicit[k]) for k in default)


def test_a_merge_on_cuda_where_there_is_none_is_refused_before_any_work(trio, pml_home, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InvalidInputError, match="no CUDA GPU"):
        merge_to_store(write_recipe(tmp_path, _della(trio)), "m", device="cuda")
    assert not (pml_home / "models" / "m").exists()


def test_an_extraction_on_the_cpu_named_explicitly_equals_the_default(trio, pml_home, monkeypatch):
    from safetensors.torch import load_file

    monkeypatch.delenv("PML_DEVICE", raising=False)
    default = extract_lora(str(trio[1]), str(trio[0]), 4, "default")
    explicit = extract_lora(str(trio[1]), str(trio[0]), 4, "explicit", device="cpu")
    assert explicit.relative_error == default.relative_error
    a, b = (load_file(str(pml_home / "adapters" / n / "adapter_model.safetensors")) for n in ("default", "explicit"))
    assert a.keys() == b.keys() and len(a) > 10 and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("keep", [
    lambda d: sparsify.keep_largest(d, 0.5),
    lambda d: sparsify.keep_middle(d, 0.5, 0.1),
    lambda d: sparsify.keep_random(d, 0.5, torch.Generator().manual_seed(0), rescale=False),
])
def test_masks_are_made_on_the_deltas_device(keep):
    # (keep_by_rank draws from probabilities it must copy to the CPU first, which meta cannot)
    assert keep(torch.empty(4, 8, device=META)).device == META  # a mask left on the CPU fails the product


# Those that read values on the way (slerp's and nuslerp's angles, DARE's rescaling by
# the kept mass) cannot run on meta; they are the same code over the same tensors.
ON_META = ["linear", "task_arithmetic", "ties", "breadcrumbs", "breadcrumbs_ties", "della", "della_linear",
           "model_stock", "passthrough"]


@pytest.mark.parametrize("name", ON_META)
def test_every_tensor_a_method_makes_is_on_its_inputs_device(name):
    from device_recorder import record

    from pimpmyllama.merging.methods import METHODS
    from pimpmyllama.merging.methods.base import TensorInputs

    method = METHODS[name]
    n = 1 if method.passthrough else 3

    def filled(parameters, density):
        given = {"weight": 0.5, "t": 0.5, "density": density}
        return {k: given.get(k, v) for k, v in parameters.items()}

    density = 1.0 if name.startswith("della") else 0.5  # della's draw copies its probabilities to the CPU
    inputs = TensorInputs("model.layers.0.mlp.down_proj.weight", [torch.empty(8, 8, device=META) for _ in range(n)],
                          0 if method.needs_base else None, filled(method.parameters, density),
                          [filled(method.tensor_parameters, density) for _ in range(n)])
    result = {}
    recorder = record(lambda: result.update(merged=method.merge(inputs)))
    assert recorder.error is None
    assert result["merged"].device == META and tuple(result["merged"].shape) == (8, 8)
    assert recorder.off(META) == []
