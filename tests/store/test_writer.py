"""Every producer writes through the store's one door: a name already taken is refused
(before any work) unless --force, a kill -9 mid-write leaves nothing under the name,
and what is written carries a manifest of the one schema."""

import json
import os
import subprocess
import sys

import pytest

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.models.manifest import Manifest

# Each producer as Python: (store folder, manifest file, code writing an entry named NAME).
PRODUCERS = {
    "import": ("models", "pml-model.json",
               "from pimpmyllama.models.store import ModelStore\n"
               "ModelStore().import_model(Path(TINY), NAME, force=FORCE)"),
    "train-lora": ("adapters", "pml-adapter.json",
                   "from pimpmyllama.training.config import TrainConfig\n"
                   "from pimpmyllama.training.recipe import train\n"
                   "train(TrainConfig.model_validate({'from': 'tiny', 'data': [DATA], 'output': NAME, 'force': FORCE,"
                   " 'max_steps': 1, 'batch_size': 2, 'max_length': 64, 'eval_split': 0.1}))"),
    "train-full": ("models", "pml-model.json",
                   "from pimpmyllama.training.config import TrainConfig\n"
                   "from pimpmyllama.training.recipe import train\n"
                   "train(TrainConfig.model_validate({'from': 'tiny', 'data': [DATA], 'output': NAME, 'force': FORCE,"
                   " 'method': 'full', 'max_steps': 1, 'batch_size': 2, 'max_length': 64, 'eval_split': 0.1}))"),
    "merge": ("models", "pml-model.json",
              "from pimpmyllama.merging.merge import merge_to_store\n"
              "merge_to_store(Path(RECIPE), NAME, force=FORCE)"),
    "merge-lora": ("models", "pml-model.json",
                   "from pimpmyllama.merging.lora import merge_lora_to_store\n"
                   "merge_lora_to_store('tiny', 'form', NAME, force=FORCE)"),
    "extract-lora": ("adapters", "pml-adapter.json",
                     "from pimpmyllama.merging.lora import extract_lora\n"
                     "extract_lora('tuned', 'tiny', 2, NAME, force=FORCE)"),
}


@pytest.fixture
def inputs(store_world, tmp_path):
    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"what is {i} plus {i}?"},
                                                     {"role": "assistant", "content": str(2 * i)}]}) + "\n"
                            for i in range(20)))
    recipe = tmp_path / "recipe.yml"
    recipe.write_text("merge_method: linear\nmodels:\n  - model: tiny\n    parameters: {weight: 0.5}\n"
                      "  - model: tuned\n    parameters: {weight: 0.5}\n")
    return {"TINY": str(store_world["tiny_folder"]), "DATA": str(data), "RECIPE": str(recipe)}


def _code(producer: str, inputs: dict, name: str, force: bool, kill: bool) -> str:
    lines = ["from pathlib import Path", *(f"{k} = {v!r}" for k, v in inputs.items()),
             f"NAME = {name!r}", f"FORCE = {force!r}"]
    if kill:  # SIGKILL the process once the entry is fully written, just before it is renamed into place
        lines += ["import os, signal", "import pimpmyllama.atomic as atomic",
                  "atomic._fsync_tree = lambda path: os.kill(os.getpid(), signal.SIGKILL)"]
    return "\n".join([*lines, PRODUCERS[producer][2]])


def _run(code: str, home):
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, "PML_HOME": str(home)},
                          capture_output=True, text=True, timeout=300)


def _entries(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("producer", sorted(PRODUCERS))
def test_a_producer_refuses_a_taken_name_unless_forced_and_writes_a_manifest(producer, inputs, pml_home):
    kind_dir, manifest_file, _ = PRODUCERS[producer]
    exec(_code(producer, inputs, "out1", False, False), {})
    folder = pml_home / kind_dir / "out1"
    manifest = Manifest.model_validate_json((folder / manifest_file).read_text())  # the one schema, strict
    assert manifest.kind == ("adapter" if kind_dir == "adapters" else "model")
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    with pytest.raises(InvalidInputError, match="named 'out1' already exists"):
        exec(_code(producer, inputs, "out1", False, False), {})
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before  # untouched
    exec(_code(producer, inputs, "out1", True, False), {})
    assert Manifest.model_validate_json((folder / manifest_file).read_text()).created_at >= manifest.created_at
    assert _entries(pml_home / kind_dir).count("out1") == 1


@pytest.mark.parametrize("producer", sorted(PRODUCERS))
def test_a_kill_mid_write_leaves_nothing_under_the_name(producer, inputs, pml_home):
    kind_dir = PRODUCERS[producer][0]
    result = _run(_code(producer, inputs, "victim", False, True), pml_home)
    assert result.returncode == -9, result.stderr
    left = _entries(pml_home / kind_dir)
    assert "victim" not in left
    assert any(name.startswith(".tmp-") and name.endswith("-victim") for name in left)  # killed mid-write
    from pimpmyllama.models.adapters import AdapterStore
    from pimpmyllama.models.store import ModelStore

    (AdapterStore if kind_dir == "adapters" else ModelStore)()  # any store command sweeps what a kill left
    assert not [n for n in _entries(pml_home / kind_dir) if n.startswith(".tmp-")]
