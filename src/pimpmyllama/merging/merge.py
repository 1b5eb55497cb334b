"""`pml merge`: a recipe in, a checked model in the store out."""

from pathlib import Path

from pimpmyllama.atomic import atomic_dir
from pimpmyllama.merging.config import load_merge_config
from pimpmyllama.merging.execute import Progress, check_merged, write_merged
from pimpmyllama.merging.plan import MergePlan, build_plan


def merge_to_store(recipe: Path, name: str, *, seed: int = 0, progress: Progress | None = None,
                   replace: bool = False) -> Path:
    from pimpmyllama.errors import InvalidInputError
    from pimpmyllama.models.store import ModelStore, check_name

    check_name(name)
    store = ModelStore()
    if store.exists(name) and not replace:
        raise InvalidInputError(f"a model named {name!r} already exists (remove it first or choose another -o)")
    plan = build_plan(load_merge_config(recipe), seed)
    target = store.root / name
    with atomic_dir(target, replace=replace) as tmp:
        write_merged(plan, tmp, recipe.read_text(), progress)
        if progress:
            progress("checking", 0, None)
        check_merged(tmp)
    return target


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
