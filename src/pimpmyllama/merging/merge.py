"""`pml merge`: a recipe in, a checked model in the store out."""

import dataclasses
from pathlib import Path

from pimpmyllama.devices import resolve_device

from pimpmyllama.merging.config import load_merge_config
from pimpmyllama.merging.execute import check_merged, write_merged
from pimpmyllama.merging.plan import MergePlan, build_plan
from pimpmyllama.models.store import ModelStore
from pimpmyllama.progress import Progress


def merge_to_store(recipe: Path, name: str, *, seed: int = 0, progress: Progress | None = None,
                   force: bool = False, device=None) -> Path:
    """Run a recipe into a new store model (checked to load and generate before it appears).
    `device`: where the tensors are computed (devices.resolve_device; None: the default in force)."""
    store = ModelStore()
    store.check_new(name, force)  # before any work
    plan = dataclasses.replace(build_plan(load_merge_config(recipe), seed), device=resolve_device(device))
    with store.create(name, force=force, check=check_merged) as draft:
        draft.manifest = write_merged(plan, draft.folder, recipe.read_text(encoding="utf-8"), progress)
        if progress:
            progress("checking", 0, None)
    return store.shelf.entry(name)


def describe_plan(plan: MergePlan) -> list[dict]:
    """The dry run: per output tensor, its inputs and the parameters it will get."""
    rows = []
    for tp in plan.tensors:
        inputs = []
        for position, ((i, name), params) in enumerate(zip(tp.inputs, tp.model_params)):
            shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in params.items() if v is not None}
            inputs.append({"model": plan.sources[i].name, "tensor": name, "base": position == tp.base, **shown})
        rows.append({"tensor": tp.name, "method": plan.method.name, "t": round(tp.t, 4),
                     "params": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in tp.params.items()},
                     "inputs": inputs})
    return rows
