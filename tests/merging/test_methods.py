"""Each method against a hand-written computation of its formula, on tiny random
Llamas (the references here are the tests' own, not calls into the library)."""

import math

import torch
from merge_helpers import load_tensors, merge

ATOL = 1e-6


def inputs(trio):
    return [load_tensors(folder) for folder in trio]


def assert_all_close(merged: dict, expected: dict):
    assert sorted(merged) == sorted(expected)
    for name, tensor in expected.items():
        assert torch.allclose(merged[name], tensor, rtol=0, atol=ATOL), name


def test_linear_is_the_normalized_weighted_average(trio, pml_home, tmp_path):
    _, a, b = inputs(trio)
    merged = merge(tmp_path, {"merge_method": "linear",
                              "models": [{"model": str(trio[1]), "parameters": {"weight": 1.0}},
                                         {"model": str(trio[2]), "parameters": {"weight": 3.0}}]})
    assert_all_close(merged, {k: (1 * a[k] + 3 * b[k]) / 4 for k in a})


def _slerp(t, a, b):
    a64, b64 = a.double().flatten(), b.double().flatten()
    cos = float(a64 @ b64 / (a64.norm() * b64.norm()))
    if abs(cos) > 0.9995:
        return (1 - t) * a + t * b
    theta = math.acos(cos)
    return ((math.sin((1 - t) * theta) * a64 + math.sin(t * theta) * b64) / math.sin(theta)).view(a.shape).float()


def test_slerp_follows_the_sphere_with_a_gradient_over_layers(trio, pml_home, tmp_path):
    base, a, _ = inputs(trio)
    merged = merge(tmp_path, {"merge_method": "slerp", "base_model": str(trio[0]),
                              "parameters": {"t": [0.2, 0.8]},
                              "models": [{"model": str(trio[0])}, {"model": str(trio[1])}]})
    for name in base:
        # two layers: layer 0 at the gradient's start, layer 1 at its end; the
        # tensors outside the layers at t = 0 (mergekit's rule)
        t = 0.8 if name.startswith("model.layers.1.") else 0.2
        assert torch.allclose(merged[name], _slerp(t, base[name], a[name]), atol=1e-5), name


def test_task_arithmetic_adds_weighted_task_vectors(trio, pml_home, tmp_path):
    base, a, b = inputs(trio)
    merged = merge(tmp_path, {"merge_method": "task_arithmetic", "base_model": str(trio[0]),
                              "parameters": {"lambda": 0.5},
                              "models": [{"model": str(trio[1]), "parameters": {"weight": 0.6}},
                                         {"model": str(trio[2]), "parameters": {"weight": -0.4}}]})
    assert_all_close(merged, {k: base[k] + 0.5 * (0.6 * (a[k] - base[k]) - 0.4 * (b[k] - base[k])) for k in base})


def _top(delta, density):
    flat = delta.flatten().abs()
    k = int(density * flat.numel())
    threshold_indices = flat.argsort(descending=True)[:k]
    mask = torch.zeros_like(flat)
    mask[threshold_indices] = 1
    return delta * mask.view(delta.shape)


def test_ties_trims_elects_signs_and_averages_the_agreeing(trio, pml_home, tmp_path):
    base, a, b = inputs(trio)
    merged = merge(tmp_path, {"merge_method": "ties", "base_model": str(trio[0]),
                              "models": [{"model": str(trio[1]), "parameters": {"weight": 1.0, "density": 0.5}},
                                         {"model": str(trio[2]), "parameters": {"weight": 2.0, "density": 0.3}}]})
    expected = {}
    for k in base:
        d1, d2 = _top(a[k] - base[k], 0.5) * 1.0, _top(b[k] - base[k], 0.3) * 2.0
        total = d1 + d2
        sign = torch.where(total >= 0, 1.0, -1.0)
        agree1, agree2 = (d1.sign() == sign).float(), (d2.sign() == sign).float()
        weight = 1.0 * agree1 + 2.0 * agree2
        weight[weight == 0] = 1
        expected[k] = base[k] + (d1 * agree1 + d2 * agree2) / weight
    assert_all_close(merged, expected)


def test_breadcrumbs_drops_the_largest_and_the_smallest(trio, pml_home, tmp_path):
    base, a, _ = inputs(trio)
    merged = merge(tmp_path, {"merge_method": "breadcrumbs", "base_model": str(trio[0]),
                              "models": [{"model": str(trio[1]),
                                          "parameters": {"weight": 1.0, "density": 0.7, "gamma": 0.1}}]})
    for k in ("model.layers.0.mlp.up_proj.weight", "model.embed_tokens.weight"):
        delta = (a[k] - base[k]).flatten()
        n = delta.numel()
        order = delta.abs().argsort()  # ascending
        keep = torch.zeros(n, dtype=torch.bool)
        keep[order[n - int(0.7 * n) - int(0.1 * n): n - int(0.1 * n)]] = True
        assert torch.allclose(merged[k].flatten(), base[k].flatten() + delta * keep, atol=ATOL), k


def test_model_stock_moves_towards_the_average_by_the_task_vectors_angle(trio, pml_home, tmp_path):
    base, a, b = inputs(trio)
    merged = merge(tmp_path, {"merge_method": "model_stock", "base_model": str(trio[0]),
                              "models": [{"model": str(trio[1])}, {"model": str(trio[2])}]})
    expected = {}
    for k in base:
        d1, d2 = (a[k] - base[k]).flatten().double(), (b[k] - base[k]).flatten().double()
        cos = float(d1 @ d2 / (d1.norm() * d2.norm()))
        t = 2 * cos / (1 + cos)
        expected[k] = (t * (a[k] + b[k]) / 2 + (1 - t) * base[k]).float()
    assert_all_close(merged, expected)


def test_passthrough_slices_stack_layers(trio, pml_home, tmp_path):
    from pimpmyllama.models.store import ModelStore

    base, a, _ = inputs(trio)
    merged = merge(tmp_path, {"merge_method": "passthrough",
                              "slices": [{"sources": [{"model": str(trio[0]), "layer_range": [0, 2]}]},
                                         {"sources": [{"model": str(trio[1]), "layer_range": [1, 2]}]}]})
    # embeddings from the first slice's model, the final norm from the last one's
    expected = {k: v for k, v in base.items() if k != "model.norm.weight"}
    expected["model.norm.weight"] = a["model.norm.weight"]
    for k, v in a.items():
        if k.startswith("model.layers.1."):
            expected[k.replace("layers.1.", "layers.2.")] = v
    assert_all_close(merged, expected)
    import json

    assert json.loads((ModelStore().folder("merged") / "config.json").read_text())["num_hidden_layers"] == 3


def test_random_methods_repeat_with_their_seed_and_change_without_it(trio, pml_home, tmp_path):
    recipe = {"merge_method": "dare_ties", "base_model": str(trio[0]),
              "models": [{"model": str(trio[1]), "parameters": {"weight": 0.5, "density": 0.5}},
                         {"model": str(trio[2]), "parameters": {"weight": 0.5, "density": 0.5}}]}
    first = merge(tmp_path, recipe, "m1", seed=7)
    again = merge(tmp_path, recipe, "m2", seed=7)
    other = merge(tmp_path, recipe, "m3", seed=8)
    name = "model.layers.0.self_attn.q_proj.weight"
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first[name], other[name])


def test_della_keeps_larger_entries_more_often(trio, pml_home, tmp_path):
    base, a, _ = inputs(trio)
    merged = merge(tmp_path, {"merge_method": "della_linear", "base_model": str(trio[0]),
                              "models": [{"model": str(trio[1]),
                                          "parameters": {"weight": 1.0, "density": 0.5, "epsilon": 0.4}}]})
    k = "model.embed_tokens.weight"
    delta, kept = a[k] - base[k], (merged[k] - base[k]) != 0
    rank = delta.abs().argsort(dim=1).argsort(dim=1)
    small, large = rank < delta.shape[1] // 4, rank >= 3 * delta.shape[1] // 4
    # keep probabilities run 0.1 -> 0.9 across a row's ranks: ~0.2 in the lowest
    # quarter, ~0.8 in the highest
    assert kept[small].float().mean() < 0.3 < 0.7 < kept[large].float().mean()


def test_a_model_plus_adapter_input_is_the_base_with_the_lora_update(trio, lora_adapter, pml_home, tmp_path):
    base = load_tensors(trio[0])
    adapter = load_tensors(lora_adapter)
    merged = merge(tmp_path, {"merge_method": "linear",
                              "models": [{"model": f"{trio[0]}+{lora_adapter}", "parameters": {"weight": 1.0}}]})
    scale = 16 / 4  # lora_alpha / r
    expected = dict(base)
    for module in ("q_proj", "v_proj"):
        for layer in range(2):
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            update = adapter[f"{prefix}.lora_B.weight"] @ adapter[f"{prefix}.lora_A.weight"]
            name = f"model.layers.{layer}.self_attn.{module}.weight"
            expected[name] = base[name] + scale * update
    assert_all_close(merged, expected)


def test_nuslerp_follows_the_sphere_by_the_models_weights(trio, pml_home, tmp_path):
    _, a, b = inputs(trio)
    merged = merge(tmp_path, {"merge_method": "nuslerp",
                              "models": [{"model": str(trio[1]), "parameters": {"weight": 1.0}},
                                         {"model": str(trio[2]), "parameters": {"weight": 3.0}}]})
    for name in a:  # t = 3 / (1 + 3), over each whole tensor
        assert torch.allclose(merged[name], _slerp(0.75, a[name], b[name]), atol=1e-5), name
