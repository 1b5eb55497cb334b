"""The seed experiment, short: a LoRA fine-tune of the default model on a domain,
merged back with its base by task arithmetic at weight 0.5. The merge keeps most of
the domain gain and pays less general perplexity than the fine-tune.
The full version is examples/merging/experiment.py."""

import importlib.util
import math
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
EXPERIMENT = Path(__file__).parents[2] / "examples" / "merging" / "experiment.py"


def load_experiment():
    spec = importlib.util.spec_from_file_location("merge_experiment", EXPERIMENT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_merge_keeps_most_of_the_gain_and_forgets_less(default_model_home, monkeypatch, tmp_path):
    monkeypatch.setenv("PML_HOME", str(default_model_home))
    experiment = load_experiment()
    rows = experiment.run(tmp_path / "work", train_size=100, held=10, weights=(0.5,), methods=("task_arithmetic",),
                          general_chars=6000, adapter="e2e-merge-lora", epochs=1.0,
                          prefix="e2e-merge")
    print("\n" + experiment.table(rows))
    base, tuned, merged = rows
    assert merged.model == "task_arithmetic 0.5"
    assert tuned.domain < 0.5 * base.domain  # the fine-tune learned the domain
    gain = math.log(base.domain / tuned.domain)
    kept = math.log(base.domain / merged.domain) / gain
    assert kept > 0.5  # the merge keeps most of it...
    assert merged.general < tuned.general  # ...and loses less of the general text
    assert (default_model_home / "models" / "e2e-merge-ta-0.5" / "merge-recipe.yml").exists()
    from pimpmyllama.models.adapters import AdapterStore
    from pimpmyllama.models.store import ModelStore

    ModelStore().remove("e2e-merge-ta-0.5")
    AdapterStore().remove("e2e-merge-lora")
