"""Running a plan: each output tensor is computed from one tensor per input model and
written out at once (streamed safetensors), then the model is checked."""

import json
import shutil
from pathlib import Path

import torch

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.generation.engine import Engine, GenerationParams
from pimpmyllama.generation.sampling import SamplingParams
from pimpmyllama.merging.methods.base import TensorInputs
from pimpmyllama.merging.plan import EMBEDDINGS, MergePlan, TensorPlan
from pimpmyllama.models.manifest import Manifest, Parent
from pimpmyllama.models.shards import DTYPES, TensorSpec, write_streaming
from pimpmyllama.models.shelf import TOKENIZER_FILES
from pimpmyllama.progress import Progress


def _read(plan: MergePlan, source_index: int, name: str) -> torch.Tensor:
    tensor = plan.sources[source_index].read(name)
    rows = plan.row_maps.get(source_index)
    if rows is None or name not in EMBEDDINGS:
        return tensor
    # Re-order embedding rows to the output tokenizer; missing tokens take the
    # tokenizer source's row.
    source = plan.sources.index(plan.tokenizer_from)
    own = tensor[rows.clamp(min=0)]
    missing = rows < 0
    if missing.any():
        fallback = plan.tokenizer_from.read(name)[plan.row_maps[source].clamp(min=0)]
        own[missing] = fallback[missing]
    return own


def compute_tensor(plan: MergePlan, tp: TensorPlan) -> torch.Tensor:
    tensors = [_read(plan, i, name).to(plan.device, plan.compute_dtype) for i, name in tp.inputs]
    inputs = TensorInputs(tp.name, tensors, tp.base, tp.params, tp.model_params, plan.generator(tp.name))
    try:
        merged = plan.method.merge(inputs)
    except (ValueError, RuntimeError) as exc:
        raise InvalidInputError(f"{plan.method.name} failed on {tp.name}: {exc}") from None
    if merged.is_floating_point() and not torch.isfinite(merged).all():
        raise InvalidInputError(f"the merge produced NaN or infinite values in {tp.name}")
    return merged.to("cpu", plan.out_dtype)


def write_merged(plan: MergePlan, folder: Path, recipe_text: str, progress: Progress | None = None) -> Manifest:
    """The merged model's files into `folder`; returns its manifest."""
    by_name = {tp.name: tp for tp in plan.tensors}
    specs = [TensorSpec(tp.name, DTYPES[plan.out_dtype], tp.shape) for tp in plan.tensors]
    write_streaming(
        folder,
        specs,
        lambda spec: compute_tensor(plan, by_name[spec.name]),
        on_tensor=(lambda done, total: progress("merging tensors", done, total)) if progress else None,
    )
    config = dict(plan.out_config)
    config["dtype"] = str(plan.out_dtype).replace("torch.", "")
    config.pop("torch_dtype", None)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    for file in TOKENIZER_FILES:
        if (plan.tokenizer_from.folder / file).exists():
            shutil.copy2(plan.tokenizer_from.folder / file, folder / file)
    if plan.config.chat_template and "{" in plan.config.chat_template:
        (folder / "chat_template.jinja").write_text(plan.config.chat_template)
    (folder / "merge-recipe.yml").write_text(recipe_text)
    return Manifest(kind="model", made_by="merge", source=f"merge ({plan.method.name})",
                    parents=[Parent(**s.identity()) for s in plan.sources],
                    recipe={"method": plan.method.name, "seed": plan.seed if plan.method.random else None,
                            "file": "merge-recipe.yml"})


def check_merged(folder: Path) -> None:
    """Every tensor was checked finite as it was computed; here the model must load
    (every tensor present, shapes matching its config) and generate."""
    if not (folder / "tokenizer.json").exists():
        raise InvalidInputError("the merged model has no tokenizer.json (set tokenizer_source)")
    engine = Engine.load(folder.name, folder, precision="bf16")  # half the memory of fp32: enough to check
    prompt = engine.tokenizer.encode("Hello", add_special_tokens=True) or [0]
    completion = engine.generate(prompt, GenerationParams(max_new_tokens=4, ignore_end_tokens=True,
                                                          sampling=SamplingParams(temperature=0)), 64).run()
    if completion.usage.completion_tokens != 4:
        raise InvalidInputError("the merged model does not generate")
