"""Running a recipe through `pml merge`'s library call and reading the result."""

from pathlib import Path

import yaml


def write_recipe(folder: Path, recipe: dict) -> Path:
    path = folder / "recipe.yml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def load_tensors(folder: Path) -> dict:
    from safetensors.torch import load_file

    tensors = {}
    for file in sorted(folder.glob("*.safetensors")):
        tensors.update(load_file(str(file)))
    return tensors


def merge(tmp_path: Path, recipe: dict, name: str = "merged", seed: int = 0) -> dict:
    from pimpmyllama.merging.merge import merge_to_store

    return load_tensors(merge_to_store(write_recipe(tmp_path, recipe), name, seed=seed))
