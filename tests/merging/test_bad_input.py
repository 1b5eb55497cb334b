"""Recipes that cannot work fail before any tensor is computed: one line, exit 2,
and nothing written to the store."""

import pytest
import yaml

from cli_run import assert_one_line_error, pml
from tiny import make_tiny_model


@pytest.fixture(scope="module")
def narrow(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("narrow") / "m", hidden_size=32, intermediate_size=64)


@pytest.fixture(scope="module")
def other_vocabulary(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("vocab") / "m", tokenizer_size=400)


def ties(*folders, base=None, **params):
    return {"merge_method": "ties", "base_model": str(base or folders[0]),
            "models": [{"model": str(f), "parameters": {"weight": 0.5, **params}} for f in folders[1:]]}


def cases(trio, narrow, other_vocabulary):
    base, a, b = (str(f) for f in trio)
    return {
        "unknown method": ({"merge_method": "frobnicate", "models": [{"model": a}]},
                           ["unknown merge method 'frobnicate'", "known: breadcrumbs"]),
        "unknown parameter": (ties(*trio, densty=0.5), ["unknown parameter 'densty' for merge method ties"]),
        "unknown key": ({"merge_metod": "ties", "models": [{"model": a}]}, ["unknown key 'merge_metod'"]),
        "missing model": ({"merge_method": "linear", "models": [{"model": "nope", "parameters": {"weight": 1}}]},
                          ["unknown build or model 'nope'"]),
        "mismatched shapes": (ties(trio[0], narrow, density=0.5),
                              ["tensor model.embed_tokens.weight has shape (384, 32)", "but (384, 64)",
                               "models of different sizes"]),
        "different vocabularies": (ties(trio[0], other_vocabulary, density=0.5),
                                   ["different vocabularies", "set tokenizer_source"]),
        "slerp with three models": ({"merge_method": "slerp", "base_model": base, "parameters": {"t": 0.5},
                                     "models": [{"model": base}, {"model": a}, {"model": b}]},
                                    ["slerp takes a base model and exactly 1 other model(s); slice 1 has 2"]),
        "model_stock with two": ({"merge_method": "model_stock", "base_model": base,
                                  "models": [{"model": base}, {"model": a}]},
                                 ["model_stock takes a base model and at least 2 other model(s); slice 1 has 1"]),
        "density above one": (ties(*trio, density=1.5), ["density 1.5 is outside (0, 1]"]),
        "density zero": (ties(*trio, density=[0.5, 0]), ["density 0.0 is outside (0, 1]"]),
        "no base for ties": ({"merge_method": "ties", "models": [{"model": a, "parameters": {"weight": 1}}]},
                             ["ties needs a base model among its inputs"]),
        "missing weight": ({"merge_method": "linear", "models": [{"model": a}, {"model": b}]},
                           ["linear needs parameter 'weight' for model"]),
        "weight a string": (ties(*trio, weight="heavy"), ["parameter 'weight' must be a number, not 'heavy'"]),
        "weight in a condition": (ties(*trio, weight=[{"filter": "mlp", "value": "x"}, {"value": 1}]),
                                  ["parameter 'weight' must be a number, not 'x'"]),
        "flag a number": ({**ties(*trio, density=0.5), "parameters": {"normalize": 2}},
                          ["parameter 'normalize' must be true or false, not 2"]),
        "layer range": ({"merge_method": "passthrough", "slices": [{"sources": [{"model": a, "layer_range": [0, 5]}]}]},
                        ["layer_range [0, 5] is outside"]),
    }


NAMES = ["unknown method", "unknown parameter", "unknown key", "missing model", "mismatched shapes",
         "different vocabularies", "slerp with three models", "model_stock with two", "density above one",
         "density zero", "no base for ties", "missing weight", "weight a string", "weight in a condition",
         "flag a number", "layer range"]


@pytest.mark.parametrize("case", NAMES)
def test_a_bad_recipe_is_one_line_and_writes_nothing(case, trio, narrow, other_vocabulary, pml_home, tmp_path):
    recipe, fragments = cases(trio, narrow, other_vocabulary)[case]
    path = tmp_path / "recipe.yml"
    path.write_text(yaml.safe_dump(recipe))
    assert_one_line_error(pml("merge", str(path), "-o", "out", home=pml_home), *fragments)
    models = pml_home / "models"
    assert not models.exists() or [p.name for p in models.iterdir()] == []


def test_a_mistyped_parameter_fails_the_dry_run_too(trio, pml_home, tmp_path):
    path = tmp_path / "recipe.yml"
    path.write_text(yaml.safe_dump(ties(*trio, weight="heavy")))
    assert_one_line_error(pml("merge", str(path), "--dry-run", home=pml_home),
                          "parameter 'weight' must be a number, not 'heavy'")


def test_a_failure_midway_leaves_nothing_in_the_store(trio, pml_home, tmp_path, monkeypatch):
    from merge_helpers import write_recipe
    from pimpmyllama.errors import InvalidInputError
    from pimpmyllama.merging import execute
    from pimpmyllama.merging.merge import merge_to_store

    calls = []
    real = execute.compute_tensor

    def fails_on_the_fifth(plan, tp):
        calls.append(tp.name)
        if len(calls) == 5:
            raise InvalidInputError("the merge produced NaN or infinite values in " + tp.name)
        return real(plan, tp)

    monkeypatch.setattr(execute, "compute_tensor", fails_on_the_fifth)
    with pytest.raises(InvalidInputError, match="NaN"):
        merge_to_store(write_recipe(tmp_path, ties(*trio, density=0.5)), "out")
    assert [p.name for p in (pml_home / "models").iterdir()] == []
