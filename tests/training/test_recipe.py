"""Training runs on the tiny model: what they write, and that it loads where it should."""

import json
import re

import pytest
import torch

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.models.manifest import Manifest
from pimpmyllama.training.recipe import train


def test_a_lora_run_writes_a_peft_adapter_with_its_story(train_config, pml_home, tiny_model):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    result = train(train_config())
    folder = pml_home / "adapters" / "t1"
    assert {"adapter_config.json", "adapter_model.safetensors", "pml-adapter.json", "metrics.jsonl",
            "loss.png"} <= {p.name for p in folder.iterdir()}
    record = Manifest.model_validate_json((folder / "pml-adapter.json").read_text())
    meta = record.training
    assert (record.kind, record.made_by, record.base.ref) == ("adapter", "train", "tiny")
    assert meta["method"] == "lora" and len(meta["data_hash"]) == 64
    assert meta["config"]["lora_rank"] == 8 and meta["metrics"]["steps"] == 4 == result.steps
    assert set(meta["metrics"]["before"]) == {"domain", "general"}
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3, 4]
    assert (folder / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # PEFT loads it, and our engine applies it identically
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model))
    peft_model = PeftModel.from_pretrained(base, str(folder))
    ids = [5, 17, 42, 99, 3, 7]
    with torch.no_grad():
        expected = peft_model(torch.tensor([ids])).logits[0]
    from pimpmyllama.generation.engine import Engine

    engine = Engine.load("tiny", pml_home / "models" / "tiny", adapter=folder, precision="fp32")
    assert engine.name == "tiny+t1"
    got = engine.backend.forward(ids, engine.backend.new_cache(16), 0, all_logits=True)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    plain = Engine.load("tiny", pml_home / "models" / "tiny", precision="fp32").backend
    assert not torch.allclose(plain.forward(ids, plain.new_cache(16), 0, all_logits=True), expected, atol=1e-3)


def test_at_int4_the_adapter_runs_beside_the_quantized_base(train_config, pml_home):
    """4-bit rounding of merged weights would erase most of a LoRA's change, so at int4
    the base is quantized alone and the factors run beside it."""
    from pimpmyllama.generation.loading import load_backend
    from pimpmyllama.generation.rope import interleave_heads
    from pimpmyllama.models.adapters import read_adapter

    train(train_config(learning_rate=1e-2))
    folder, model = pml_home / "adapters" / "t1", pml_home / "models" / "tiny"
    tuned, base = load_backend(model, "int4", folder), load_backend(model, "int4")
    for got, plain in zip(tuned.layers, base.layers):
        assert torch.equal(got.qkv.product.dequantized(), plain.qkv.product.dequantized())
        assert torch.equal(got.down.product.dequantized(), plain.down.product.dequantized())
        assert got.qkv.low_rank is not None and plain.qkv.low_rank is None
    # fused as the layer is: B @ A is the q, k, v updates stacked, q and k in the pair order
    deltas, _ = read_adapter(folder)
    a, b = tuned.layers[1].qkv.low_rank
    p, hd = "model.layers.1.self_attn.", tuned.spec.head_dim
    expected = torch.cat([interleave_heads(deltas[p + "q_proj.weight"], hd),
                          interleave_heads(deltas[p + "k_proj.weight"], hd), deltas[p + "v_proj.weight"]])
    torch.testing.assert_close(b @ a, expected, rtol=1e-5, atol=1e-6)
    # and the layer adds exactly that update to the quantized base's product, in fp32
    x = torch.randn(1, tuned.spec.hidden_size, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(tuned.layers[1].qkv(x) - base.layers[1].qkv(x), x @ expected.T, rtol=1e-4, atol=1e-5)


def test_training_lowers_the_loss_on_its_data(train_config):
    result = train(train_config(max_steps=30, eval_split=0.0, batch_size=4))
    losses = [json.loads(line)["loss"] for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert losses[-1] < 0.5 * losses[0]


def test_a_full_run_writes_a_model_to_the_store(train_config, pml_home):
    train(train_config(method="full", output="full1", max_steps=2, learning_rate=1e-4))
    folder = pml_home / "models" / "full1"
    assert (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists()
    from pimpmyllama.models.store import ModelStore

    assert "full1" in ModelStore().names()
    record = Manifest.model_validate_json((folder / "pml-model.json").read_text())
    assert (record.kind, record.made_by, record.base.ref) == ("model", "train", "tiny")


def test_an_adapter_for_another_base_is_refused(train_config, pml_home, tmp_path):
    from tiny import make_tiny_model

    from pimpmyllama.generation.engine import Engine
    from pimpmyllama.models.store import ModelStore

    train(train_config(max_steps=1))
    ModelStore().import_model(make_tiny_model(tmp_path / "other", seed=7), "other")
    with pytest.raises(InvalidInputError, match="adapter t1 was trained on tiny, not on other"):
        Engine.load("other", pml_home / "models" / "other", adapter=pml_home / "adapters" / "t1")
    big = make_tiny_model(tmp_path / "big", seed=7, hidden_size=128, intermediate_size=256)
    ModelStore().import_model(big, "big")
    (pml_home / "adapters" / "t1" / "pml-adapter.json").unlink()  # without the record, shapes still tell
    with pytest.raises(InvalidInputError, match="adapter t1 does not fit big: model.layers.0"):
        Engine.load("big", pml_home / "models" / "big", adapter=pml_home / "adapters" / "t1")


@pytest.mark.parametrize(
    "records, message",
    [
        ([], "the dataset is empty"),
        ([{"messages": [{"role": "user", "content": "q"}]}], "no assistant turn to learn from"),
        ([{"messages": [{"role": "wizard", "content": "q"}]}], "unknown role 'wizard'"),
        ([{"messages": [{"role": "user", "content": "hello " * 100}, {"role": "assistant", "content": "x"}]}],
         "no example fits max_length 64 (1 too long)"),
    ],
)
def test_bad_data_fails_before_anything_is_written(train_config, pml_home, tmp_path, records, message):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        train(train_config(data=[str(path)]))
    assert not (pml_home / "adapters").exists() or list((pml_home / "adapters").iterdir()) == []


def test_too_long_examples_are_dropped_and_counted(train_config, chat_data, tmp_path):
    long = {"messages": [{"role": "user", "content": "hello " * 100}, {"role": "assistant", "content": "x"}]}
    path = tmp_path / "mixed.jsonl"
    path.write_text(chat_data.read_text() + json.dumps(long) + "\n")
    result = train(train_config(data=[str(path)], max_steps=1))
    assert result.metrics["dropped_too_long"] == 1


def test_a_failure_while_saving_leaves_no_adapter(train_config, pml_home, monkeypatch):
    import pimpmyllama.models.adapters as adapters

    def broken(folder):
        raise InvalidInputError("simulated check failure")

    monkeypatch.setattr(adapters, "check_adapter_files", broken)
    with pytest.raises(InvalidInputError, match="simulated"):
        train(train_config(max_steps=1))
    assert [p.name for p in (pml_home / "adapters").iterdir() if p.name != ".lock"] == []
