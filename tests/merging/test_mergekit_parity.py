"""The same recipes through mergekit itself and through `pml merge`: deterministic
methods give equal tensors (fp32, 1e-6); random ones agree in statistics."""

import pytest
import torch

from merge_helpers import load_tensors, merge

mergekit = pytest.importorskip("mergekit")

TOLERANCE = 1e-6


def run_mergekit(tmp_path, recipe: dict) -> dict:
    from mergekit.config import MergeConfiguration
    from mergekit.merge import run_merge
    from mergekit.options import MergeOptions

    out = tmp_path / "mergekit-out"
    run_merge(MergeConfiguration.model_validate(recipe), str(out),
              MergeOptions(copy_tokenizer=False, write_model_card=False, quiet=True, random_seed=0))
    return load_tensors(out)


def models(*entries):
    return [{"model": str(folder), **({"parameters": params} if params else {})} for folder, params in entries]


def recipes(trio):
    base, t1, t2 = (str(f) for f in trio)
    return {
        "linear": {"merge_method": "linear", "models": models((trio[1], {"weight": 0.3}), (trio[2], {"weight": 0.7}))},
        "linear-unnormalized": {"merge_method": "linear", "parameters": {"normalize": False},
                                "models": models((trio[1], {"weight": 0.5}), (trio[2], {"weight": 0.25}))},
        "slerp-gradient": {"merge_method": "slerp", "base_model": base,
                           "parameters": {"t": [{"filter": "self_attn", "value": [0.1, 0.9]}, {"value": 0.6}]},
                           "models": models((trio[0], None), (trio[1], None))},
        "nuslerp": {"merge_method": "nuslerp",
                    "models": models((trio[1], {"weight": 0.4}), (trio[2], {"weight": 0.6}))},
        "nuslerp-rowwise-base": {"merge_method": "nuslerp", "base_model": base,
                                 "parameters": {"nuslerp_flatten": False, "nuslerp_row_wise": True},
                                 "models": models((trio[1], {"weight": 1.0}), (trio[2], {"weight": 2.0}))},
        "task_arithmetic": {"merge_method": "task_arithmetic", "base_model": base, "parameters": {"lambda": 0.8},
                            "models": models((trio[1], {"weight": 0.6}), (trio[2], {"weight": [0.2, 0.5]}))},
        "ties": {"merge_method": "ties", "base_model": base,
                 "models": models((trio[1], {"weight": 0.5, "density": 0.5}),
                                  (trio[2], {"weight": 0.7, "density": [0.3, 0.9]}))},
        # int8_mask only changes the masks' storage in mergekit; the values are the same.
        "ties-int8-mask": {"merge_method": "ties", "base_model": base, "parameters": {"int8_mask": True},
                           "models": models((trio[1], {"weight": 0.5, "density": 0.5}),
                                            (trio[2], {"weight": 0.7, "density": [0.3, 0.9]}))},
        "breadcrumbs": {"merge_method": "breadcrumbs", "base_model": base,
                        "models": models((trio[1], {"weight": 0.5, "density": 0.8, "gamma": 0.05}),
                                         (trio[2], {"weight": 0.5, "density": 0.6, "gamma": 0.1}))},
        "breadcrumbs_ties": {"merge_method": "breadcrumbs_ties", "base_model": base,
                             "models": models((trio[1], {"weight": 0.6, "density": 0.7, "gamma": 0.02}),
                                              (trio[2], {"weight": 0.4, "density": 0.7, "gamma": 0.02}))},
        "model_stock": {"merge_method": "model_stock", "base_model": base,
                        "models": models((trio[1], None), (trio[2], None))},
        "model_stock-filter-wise": {"merge_method": "model_stock", "base_model": base,
                                    "parameters": {"filter_wise": True},
                                    "models": models((trio[1], None), (trio[2], None))},
        "passthrough": {"merge_method": "passthrough",
                        "slices": [{"sources": [{"model": base, "layer_range": [0, 2]}]},
                                   {"sources": [{"model": t1, "layer_range": [1, 2]}]}]},
    }


@pytest.mark.parametrize("name", ["linear", "linear-unnormalized", "slerp-gradient", "nuslerp", "nuslerp-rowwise-base",
                                  "task_arithmetic", "ties", "ties-int8-mask", "breadcrumbs", "breadcrumbs_ties", "model_stock",
                                  "model_stock-filter-wise", "passthrough"])
def test_deterministic_methods_equal_mergekit(name, trio, pml_home, tmp_path):
    recipe = {**recipes(trio)[name], "dtype": "float32"}
    theirs = run_mergekit(tmp_path, recipe)
    ours = merge(tmp_path, recipe)
    assert sorted(ours) == sorted(theirs)
    for tensor, expected in theirs.items():
        assert ours[tensor].dtype == expected.dtype == torch.float32, tensor
        assert torch.allclose(ours[tensor], expected, rtol=0, atol=TOLERANCE), (
            f"{tensor}: max difference {(ours[tensor] - expected).abs().max():.3g}")


@pytest.mark.parametrize("method", ["dare_linear", "dare_ties", "della", "della_linear"])
def test_random_methods_agree_with_mergekit_in_statistics(method, trio, pml_home, tmp_path):
    """One fine-tune at weight 1: the merge minus the base is that fine-tune's sparsified
    task vector. Kept fraction and L1 norm (rescaled to the original's) agree."""
    params = {"weight": 1.0, "density": 0.4}
    if method.startswith("della"):
        params["epsilon"] = 0.1
    recipe = {"merge_method": method, "base_model": str(trio[0]), "dtype": "float32",
              "models": models((trio[1], params))}
    theirs = run_mergekit(tmp_path, recipe)
    ours = merge(tmp_path, recipe)
    base, tuned = load_tensors(trio[0]), load_tensors(trio[1])
    assert sorted(ours) == sorted(theirs)
    for tensor in ("model.embed_tokens.weight", "model.layers.0.mlp.down_proj.weight",
                   "model.layers.1.self_attn.q_proj.weight"):
        delta = tuned[tensor] - base[tensor]
        for merged, who in ((ours[tensor], "ours"), (theirs[tensor], "mergekit")):
            kept = merged - base[tensor]
            fraction = (kept != 0).float().mean().item()
            assert abs(fraction - 0.4) < 0.03, (who, tensor, fraction)
            # rescaled so the L1 norm of the kept part equals the whole task vector's
            assert kept.abs().sum().item() == pytest.approx(delta.abs().sum().item(), rel=1e-4), (who, tensor)
            # what is kept is unchanged up to the one common scale
            scale = kept.abs().sum() / delta[kept != 0].abs().sum()
            assert torch.allclose(kept[kept != 0], delta[kept != 0] * scale, atol=1e-6)
        ours_frac = (ours[tensor] != base[tensor]).float().mean()
        theirs_frac = (theirs[tensor] != base[tensor]).float().mean()
        assert abs(ours_frac - theirs_frac) < 0.04, tensor
