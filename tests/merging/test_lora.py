"""`pml merge lora` bakes an adapter into its base; `pml extract-lora` recovers one
from a fine-tune by SVD (tied embeddings stored once, as modules_to_save)."""

import json

import pytest
import torch
from typer.testing import CliRunner

from merge_helpers import load_tensors


def pml(*args):
    from pimpmyllama.cli.main import app

    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # as one line, whatever the terminal's width


def test_merge_lora_adds_the_scaled_update(trio, lora_adapter, pml_home):
    pml("merge", "lora", str(trio[0]), str(lora_adapter), "-o", "baked")
    merged, base, adapter = load_tensors(pml_home / "models" / "baked"), load_tensors(trio[0]), load_tensors(lora_adapter)
    changed = 0
    for name, tensor in base.items():
        key = "base_model.model." + name.removesuffix(".weight")
        if f"{key}.lora_A.weight" in adapter:
            expected = tensor + 4.0 * adapter[f"{key}.lora_B.weight"] @ adapter[f"{key}.lora_A.weight"]
            changed += 1
        else:
            expected = tensor
        assert torch.allclose(merged[name], expected, atol=1e-6), name
    assert changed == 4  # q_proj and v_proj in two layers


@pytest.mark.parametrize("rank, exact", [(64, True), (4, False)])
def test_extract_lora_recovers_the_fine_tune_through_peft(rank, exact, trio, pml_home):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    output = pml("extract-lora", str(trio[1]), "--base", str(trio[0]), "--rank", str(rank), "-o", "x")
    assert f"rank {rank} on 14 layers" in output and "stored whole: model.embed_tokens.weight" in output
    folder = pml_home / "adapters" / "x"
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["r"] == rank and sorted(config["target_modules"]) == [
        "down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    weights = load_tensors(folder)
    # tied embeddings: one embedding tensor, no separate output head
    assert [k for k in weights if "lora" not in k] == sorted(
        k for k in weights if "lora" not in k and ("embed_tokens" in k or "norm" in k))
    assert not any("lm_head" in k for k in weights)

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(trio[0])), str(folder))
    recovered = model.merge_and_unload().state_dict()
    tuned = load_tensors(trio[1])
    errors = {name: float((recovered[name] - t).norm() / t.norm()) for name, t in tuned.items()}
    if exact:  # rank 64 is the full rank of a 64-wide layer: nothing is lost
        assert max(errors.values()) < 1e-4
    else:
        base = load_tensors(trio[0])
        name = "model.layers.0.self_attn.q_proj.weight"
        without = float((base[name] - tuned[name]).norm() / tuned[name].norm())
        # a random change is full-rank: rank 4 of 64 recovers part of it, and keeps the base
        assert 0.5 * without < errors[name] < 0.99 * without
        assert errors["model.embed_tokens.weight"] < 1e-6  # stored whole


def test_extract_lora_of_a_model_from_itself_is_refused(trio, pml_home):
    from pimpmyllama.cli.main import app

    result = CliRunner().invoke(app, ["extract-lora", str(trio[0]), "--base", str(trio[0]), "-o", "x"])
    assert result.exit_code == 2
    assert "identical weights: nothing to extract" in result.output
    assert not (pml_home / "adapters" / "x").exists()
