"""The plan a dry run prints: per tensor, the parameters after gradients and filters;
and the alignment of embeddings when vocabularies differ."""

import json

import pytest
import torch
import yaml

from pimpmyllama.models.manifest import Manifest
from typer.testing import CliRunner

from merge_helpers import load_tensors, merge
from tiny import make_tiny_model


def dry_run(tmp_path, recipe):
    from pimpmyllama.cli.main import app

    path = tmp_path / "recipe.yml"
    path.write_text(yaml.safe_dump(recipe))
    result = CliRunner().invoke(app, ["merge", str(path), "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    return {row["tensor"]: row for row in json.loads(result.stdout)}


def test_gradients_and_filters_resolve_per_tensor(trio, pml_home, tmp_path):
    base, a, b = (str(f) for f in trio)
    plan = dry_run(tmp_path, {
        "merge_method": "ties", "base_model": base,
        "parameters": {"density": [1.0, 0.5], "weight": [{"filter": "self_attn", "value": 0.3}, {"value": 0.7}]},
        "models": [{"model": a}, {"model": b, "parameters": {"density": 0.9}}],
    })
    q0, q1 = plan["model.layers.0.self_attn.q_proj.weight"], plan["model.layers.1.self_attn.q_proj.weight"]
    up1 = plan["model.layers.1.mlp.up_proj.weight"]
    assert [(i["model"], i["base"]) for i in q0["inputs"]] == [(a, False), (b, False), (base, True)]
    assert [i["density"] for i in q0["inputs"][:2]] == [1.0, 0.9]  # the gradient's start; b's own value wins
    assert [i["density"] for i in q1["inputs"][:2]] == [0.5, 0.9]  # its end
    assert [i["weight"] for i in q1["inputs"][:2]] == [0.3, 0.3]  # the self_attn filter
    assert [i["weight"] for i in up1["inputs"][:2]] == [0.7, 0.7]  # the fallback
    assert plan["model.embed_tokens.weight"]["t"] == 0 and q1["t"] == 1
    assert len(plan) == 2 * 9 + 2  # nine tensors per layer, embeddings and final norm
    assert list((pml_home / "models").iterdir()) == []  # a dry run computes and writes nothing


def test_a_three_layer_gradient_interpolates_between_its_points(pml_home, tmp_path):
    model = make_tiny_model(tmp_path / "deep", num_hidden_layers=5)
    plan = dry_run(tmp_path, {"merge_method": "slerp", "base_model": str(model), "parameters": {"t": [0, 1, 0]},
                              "models": [{"model": str(model)}, {"model": str(model)}]})
    ts = [plan[f"model.layers.{i}.mlp.up_proj.weight"]["params"]["t"] for i in range(5)]
    assert ts == [0, 0.5, 1, 0.5, 0]


@pytest.fixture(scope="module")
def bigger_vocabulary(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("vocab") / "m", seed=5, tokenizer_size=400)


def test_tokenizer_source_aligns_embedding_rows_by_token(trio, bigger_vocabulary, pml_home, tmp_path):
    from pimpmyllama.merging.inputs import vocabulary

    merged = merge(tmp_path, {"merge_method": "linear", "tokenizer_source": "base", "base_model": str(trio[0]),
                              "models": [{"model": str(trio[0]), "parameters": {"weight": 1.0}},
                                         {"model": str(bigger_vocabulary), "parameters": {"weight": 1.0}}]})
    small, large = load_tensors(trio[0]), load_tensors(bigger_vocabulary)
    vocab_small, vocab_large = vocabulary(trio[0]), vocabulary(bigger_vocabulary)
    embed = merged["model.embed_tokens.weight"]
    assert embed.shape == (len(vocab_small), 64)
    for token, row in vocab_small.items():
        other = large["model.embed_tokens.weight"][vocab_large[token]]
        assert torch.allclose(embed[row], (small["model.embed_tokens.weight"][row] + other) / 2, atol=1e-6), token
    stored = pml_home / "models" / "merged"
    assert json.loads((stored / "config.json").read_text())["vocab_size"] == len(vocab_small)
    assert (stored / "tokenizer.json").read_text() == (trio[0] / "tokenizer.json").read_text()


def test_the_recipe_and_the_inputs_identities_are_kept_beside_the_model(trio, pml_home, tmp_path):
    recipe = {"merge_method": "task_arithmetic", "base_model": str(trio[0]),
              "models": [{"model": str(trio[1]), "parameters": {"weight": 0.5}}]}
    merge(tmp_path, recipe)
    stored = pml_home / "models" / "merged"
    assert yaml.safe_load((stored / "merge-recipe.yml").read_text()) == recipe
    record = Manifest.model_validate_json((stored / "pml-model.json").read_text())
    assert (record.made_by, record.recipe["method"]) == ("merge", "task_arithmetic")
    assert [p.path for p in record.parents] == [str(trio[0]), str(trio[1])]
    assert all(len(p.fingerprint) >= 16 for p in record.parents)
