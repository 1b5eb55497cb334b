"""The model store on the tiny model: import, list, show, remove, and bad input."""

import json
import shutil

import pytest

from pimpmyllama.errors import InvalidInputError, NotFoundError
from pimpmyllama.models.store import ModelStore


def test_import_list_show_remove(pml_home, tiny_model):
    store = ModelStore()
    assert store.import_model(tiny_model, "tiny") == "tiny"
    assert store.names() == ["tiny"]
    info = store.info("tiny")
    assert (info.architecture, info.context_length, info.has_chat_template) == ("llama", 512, True)
    # 384*64 embeddings (tied) + 2 layers * (4 attn * ... ) computed from the config:
    per_layer = 64 * 64 * 2 + 64 * 32 * 2 + 3 * 64 * 128 + 2 * 64
    assert info.parameters == 384 * 64 + 2 * per_layer + 64
    assert info.size_bytes > info.parameters * 4
    meta = json.loads((pml_home / "models" / "tiny" / "pml-model.json").read_text())
    assert meta["format"] == "hf" and meta["source"] == str(tiny_model.resolve())
    store.remove("tiny")
    assert store.names() == []
    assert [p.name for p in (pml_home / "models").iterdir()] == [".lock"]


def test_default_name_comes_from_the_folder(pml_home, tiny_model):
    assert ModelStore().import_model(tiny_model) == tiny_model.name.lower()


@pytest.mark.parametrize(
    "name, message",
    [("Bad Name", "invalid model name 'Bad Name'"), ("../x", "invalid model name '../x'")],
)
def test_bad_names_are_refused(pml_home, tiny_model, name, message):
    with pytest.raises(InvalidInputError, match=message):
        ModelStore().import_model(tiny_model, name)


def test_duplicates_and_unknown_models_are_errors(pml_home, tiny_model):
    store = ModelStore()
    store.import_model(tiny_model, "tiny")
    with pytest.raises(InvalidInputError, match="a model named 'tiny' already exists"):
        store.import_model(tiny_model, "tiny")
    with pytest.raises(NotFoundError, match=r"unknown model 'nope' \(known: tiny;"):
        store.info("nope")
    with pytest.raises(NotFoundError, match="does not exist"):
        store.import_model(tiny_model / "missing", "m2")


def test_a_corrupt_weights_file_is_refused_and_nothing_is_stored(pml_home, tiny_model, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(InvalidInputError, match="model.safetensors is not a readable safetensors file"):
        ModelStore().import_model(broken, "broken")
    assert ModelStore().names() == []
    assert not [p for p in (pml_home / "models").iterdir() if p.name.startswith(".tmp")]


def test_nan_weights_are_refused(pml_home, tiny_model, tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    bad = tmp_path / "nan"
    shutil.copytree(tiny_model, bad)
    tensors = load_file(str(bad / "model.safetensors"))
    tensors["model.norm.weight"][3] = float("nan")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(bad / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(InvalidInputError, match="tensor model.norm.weight holds NaN"):
        ModelStore().import_model(bad, "nan")
    assert ModelStore().names() == []
    assert torch.isnan(tensors["model.norm.weight"]).any()


def test_a_failure_mid_import_leaves_nothing_behind(pml_home, tiny_model, monkeypatch):
    import pimpmyllama.models.store as store

    def explode(folder):
        assert (folder / "model.safetensors").exists()  # the copy was under way
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "verify_model_folder", explode)
    with pytest.raises(KeyboardInterrupt):
        ModelStore().import_model(tiny_model, "tiny")
    assert [p.name for p in (pml_home / "models").iterdir()] == []


def test_a_temp_left_by_a_killed_import_is_swept(pml_home):
    models = pml_home / "models"
    models.mkdir(parents=True)
    stale = models / ".tmp-999999-abcd1234-tiny"  # pid 999999: not running
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    assert ModelStore().names() == []
    assert not stale.exists()


def test_not_a_model(pml_home, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="has no config.json"):
        ModelStore().import_model(tmp_path / "empty", "e")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(InvalidInputError, match="neither a Hugging Face model folder nor a .gguf file"):
        ModelStore().import_model(tmp_path / "notes.txt", "e")
    (tmp_path / "fake.gguf").write_bytes(b"NOPE" + b"\0" * 64)
    with pytest.raises(InvalidInputError, match="fake.gguf is not a readable GGUF file"):
        ModelStore().import_model(tmp_path / "fake.gguf", "e")


def test_a_gguf_of_an_unsupported_architecture_is_refused(pml_home, tmp_path):
    import numpy as np
    from gguf import GGUFWriter

    path = tmp_path / "tiny-gpt2.gguf"
    writer = GGUFWriter(str(path), "gpt2")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((8, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(InvalidInputError, match="GGUF architecture 'gpt2' is not supported"):
        ModelStore().import_model(path, "g")
    assert ModelStore().names() == []
