"""Prepared weights: a second load reads the products the first one made, to the bit,
and never a file made for other weights, another precision or a merged adapter."""

import shutil

import pytest
import torch

from pimpmyllama.generation import kernels, prepared
from pimpmyllama.generation.loading import load_backend
from pimpmyllama.models.prepared_files import kept_for, prepared_dir
from mapped import mapped_file


def _products(model):
    layers = [linear for block in model.layers for linear in (block.qkv, block.out, block.gate_up, block.down)]
    return [linear.product for linear in (*layers, model.head)]


def _same_products(a, b) -> bool:
    for x, y in zip(_products(a), _products(b), strict=True):
        (facts_x, held_x), (facts_y, held_y) = x.state(), y.state()
        if type(x) is not type(y) or facts_x != facts_y or held_x.keys() != held_y.keys():
            return False
        if not all(torch.equal(held_x[k], held_y[k]) for k in held_x):
            return False
    return True


def _logits(model, ids=(1, 5, 9, 3, 7)):
    cache = model.new_cache(16)
    return model.forward(list(ids), cache, 0, all_logits=True)


@pytest.mark.parametrize("precision", ["int4", "int8"])
def test_a_second_load_reads_the_kept_products_to_the_bit(pml_home, tiny_model, precision, monkeypatch):
    first = load_backend(tiny_model, precision)
    [kept] = kept_for(tiny_model)

    def no_quantizing(*args, **kwargs):
        raise AssertionError("quantized again")

    monkeypatch.setattr("pimpmyllama.generation.building.product_for", no_quantizing)
    second = load_backend(tiny_model, precision)
    assert _same_products(first, second)
    assert torch.equal(_logits(first), _logits(second))
    assert kept_for(tiny_model) == [kept]  # found, not written again


def test_each_precision_keeps_its_own_file_and_fp32_none(pml_home, tiny_model):
    load_backend(tiny_model, "fp32")
    assert kept_for(tiny_model) == []
    load_backend(tiny_model, "int4")
    int4 = kept_for(tiny_model)
    load_backend(tiny_model, "int8")
    assert len(kept_for(tiny_model)) == 1 and kept_for(tiny_model) != int4  # the folder's older key is removed


def test_changed_weights_are_prepared_again(pml_home, tiny_model, tmp_path):
    folder = shutil.copytree(tiny_model, tmp_path / "copy")
    load_backend(folder, "int4")
    [old] = kept_for(folder)
    weights = folder / "model.safetensors"
    from safetensors.torch import load_file, save_file

    tensors = load_file(weights)
    tensors["model.layers.0.mlp.down_proj.weight"] = tensors["model.layers.0.mlp.down_proj.weight"] * 2
    save_file(tensors, weights)
    changed = load_backend(folder, "int4")
    [new] = kept_for(folder)
    assert new != old and not old.exists()
    fresh = load_backend(folder, "int4")  # quantized from the new weights, as a load without the cache does
    monkey = pytest.MonkeyPatch()
    monkey.setenv("PML_PREPARED", "0")
    try:
        uncached = load_backend(folder, "int4")
    finally:
        monkey.undo()
    assert _same_products(changed, uncached) and _same_products(fresh, uncached)


def test_an_unreadable_file_is_made_again(pml_home, tiny_model):
    reference = load_backend(tiny_model, "int4")
    [kept] = kept_for(tiny_model)
    kept.write_bytes(kept.read_bytes()[: kept.stat().st_size // 2])  # cut off
    assert prepared.PreparedProducts(tiny_model, "int4", bool(kernels.load()), torch.bfloat16).found == {}
    assert _same_products(reference, load_backend(tiny_model, "int4"))
    assert kept.stat().st_size > 1000  # written whole again
    kept.write_bytes(b"not a safetensors file")
    assert _same_products(reference, load_backend(tiny_model, "int4"))
    [rewritten] = kept_for(tiny_model)
    assert rewritten.stat().st_size > 1000


def test_kept_products_are_mapped_from_their_file_and_outlive_it(pml_home, tiny_model):
    load_backend(tiny_model, "int4")
    [kept] = kept_for(tiny_model)
    second = load_backend(tiny_model, "int4")  # reads what the first kept: mapped, not copied
    held = [t for product in _products(second) for t in product.state()[1].values()]
    assert held and all(mapped_file(t) == str(kept) for t in held)
    logits = _logits(second)
    kept.unlink()  # as a re-import's load or `pml models rm` does while a service holds the model
    load_backend(tiny_model, "int4")  # prepares and keeps a new file
    assert torch.equal(_logits(second), logits)


def test_turned_off_nothing_is_kept(pml_home, tiny_model, monkeypatch):
    monkeypatch.setenv("PML_PREPARED", "0")
    load_backend(tiny_model, "int4")
    assert not prepared_dir().exists() or not any(prepared_dir().iterdir())


def test_a_merged_adapter_is_never_kept_and_one_beside_leaves_the_products(store_world, pml_home):
    from pimpmyllama.models.store import ModelStore
    from pimpmyllama.paths import adapters_dir

    folder = ModelStore().folder("tiny")
    adapter = adapters_dir() / "form"
    load_backend(folder, "int8", adapter=adapter)  # int8 merges a LoRA into the weights
    assert kept_for(folder) == []
    plain = load_backend(folder, "int4")
    beside = load_backend(folder, "int4", adapter=adapter)  # int4 runs it beside the kept products
    assert _same_products(plain, beside)
    assert any(linear.low_rank is not None for block in beside.layers for linear in (block.qkv, block.down))
    assert not torch.equal(_logits(plain), _logits(beside))


def test_removing_a_model_removes_what_was_kept_for_it(stored_tiny):
    from pimpmyllama.models.store import ModelStore

    store = ModelStore()
    folder = store.folder("tiny")
    load_backend(folder, "int4")
    assert len(kept_for(folder)) == 1
    store.remove("tiny")
    assert kept_for(folder) == []


def test_an_interrupted_save_leaves_no_file(pml_home, tiny_model, monkeypatch):
    import safetensors.torch

    def interrupted(tensors, path, metadata=None):
        with open(path, "wb") as f:
            f.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_backend(tiny_model, "int4")
    assert list(prepared_dir().iterdir()) == []  # neither the file nor its temporary
    monkeypatch.undo()
    monkeypatch.setenv("PML_HOME", str(pml_home))
    load_backend(tiny_model, "int4")
    assert len(kept_for(tiny_model)) == 1
