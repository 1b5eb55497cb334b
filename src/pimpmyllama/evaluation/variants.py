"""From the spec's variants to builds, with the levers each one pulls.

Levers (for labels and ablation), in the car's terms: the base model is the
*engine*; a fine-tune or a merge changes the *vehicle*; the prompt, the styles
and the knowledge set the *destination*.

    prompt     a system prompt, pinned facts or few-shot messages
    styles     prompt styles
    knowledge  knowledge bases searched for each question (RAG)
    fine-tune  an adapter, or a model that `pml train` (or `merge lora`) made
    merge      a model that `pml merge` made
"""

import copy
from dataclasses import dataclass, field
from pathlib import Path

from pimpmyllama.config_files import validate
from pimpmyllama.errors import InvalidInputError, PmlError
from pimpmyllama.evaluation.spec import MERGED, Spec
from pimpmyllama.models.manifest import Manifest
from pimpmyllama.models.refs import MODEL_PREFIX, is_path, split_adapter
from pimpmyllama.models.store import ModelStore
from pimpmyllama.prompting.build import Build
from pimpmyllama.prompting.refs import is_build_file, resolve_build

LEVERS = ("prompt", "styles", "knowledge", "fine-tune", "merge")
DESTINATION = ("prompt", "styles", "knowledge")
VEHICLE = ("fine-tune", "merge")
_TUNED = ("train", "merge-lora")


@dataclass
class Variant:
    name: str
    build: Build
    levers: list[str]
    engine: str  # the base model: the model itself, or what it was trained or merged from
    ablates: tuple[str, str] | None = None  # (variant, lever) for an ablation variant
    data: dict = field(default_factory=dict, repr=False)  # the build's fields as given

    @property
    def label(self) -> str:
        return f"{self.name} [{' + '.join(self.levers) or 'base'}]"


def _build_data(build: Build) -> dict:
    data = build.model_dump(by_alias=True, exclude_unset=True)
    data["from"] = build.from_.model_dump(exclude_none=True) if build.is_remote else build.from_
    if build.adapter:
        data["adapter"] = build.adapter
    return data


def _relative(ref: str, base_dir: Path) -> str:
    if is_path(ref) and not Path(ref).expanduser().is_absolute():
        return str((base_dir / ref).resolve())
    return ref


def _named_build(ref: str, base_dir: Path) -> dict:
    target, adapter = split_adapter(ref)
    if is_build_file(target):
        path = Path(target).expanduser()
        ref = str(path if path.is_absolute() else (base_dir / path).resolve()) + (f"+{adapter}" if adapter else "")
    return _build_data(resolve_build(ref).build)


def _model_data(ref: str, base_dir: Path) -> dict:
    target, adapter = split_adapter(ref)
    target = _relative(target, base_dir)
    if not is_path(target):
        target = MODEL_PREFIX + target.removeprefix(MODEL_PREFIX)
    build = resolve_build(target + (f"+{adapter}" if adapter else "")).build
    return {"from": build.from_, "adapter": build.adapter}


def _resolve_data(spec: Spec, name: str, base_dir: Path, stack: tuple[str, ...]) -> dict:
    if name in stack:
        cycle = " -> ".join((*stack[stack.index(name):], name))
        raise InvalidInputError(f"variants extend each other in a cycle: {cycle}")
    v = spec.variants[name]
    data: dict = {}
    if v.extends is not None:
        if v.extends not in spec.variants:
            raise InvalidInputError(f"variant {name!r} extends unknown variant {v.extends!r} "
                                    f"(known: {', '.join(spec.variants)})")
        data = copy.deepcopy(_resolve_data(spec, v.extends, base_dir, (*stack, name)))
    try:
        if isinstance(v.build, str):
            data = _named_build(v.build, base_dir)
        elif isinstance(v.build, dict):
            data = copy.deepcopy(v.build)
            if isinstance(data.get("from"), str):
                data["from"] = _relative(data["from"], base_dir)
        if v.model is not None:
            data.update(_model_data(v.model, base_dir))
    except PmlError as exc:
        raise type(exc)(f"variant {name!r}: {exc}") from None
    data.update(v.overrides())
    for key in MERGED:
        given = getattr(v, key)
        if given:
            data[key] = {**(data.get(key) or {}), **given}
    return {k: val for k, val in data.items() if val is not None}


def _final_build(data: dict, source: str) -> Build:
    data = copy.deepcopy(data)
    parameters = data.setdefault("parameters", {})
    if isinstance(parameters, dict):
        parameters.setdefault("temperature", 0.0)  # greedy unless the variant samples: reproducible
    return validate(Build, data, source)


def _manifest(build: Build, models: ModelStore) -> Manifest | None:
    name = build.from_
    if build.is_remote or is_path(name) or not models.exists(name):
        return None
    return models.manifest(name)


def levers_of(build: Build, models: ModelStore) -> tuple[list[str], str]:
    """The levers a build pulls, and its engine (base model)."""
    manifest = _manifest(build, models)
    made_by = manifest.made_by if manifest else None
    levers = []
    if build.system or build.pinned or build.messages:
        levers.append("prompt")
    if getattr(build, "styles", None):
        levers.append("styles")
    if build.knowledge:
        levers.append("knowledge")
    if build.adapter or made_by in _TUNED:
        levers.append("fine-tune")
    if made_by == "merge":
        levers.append("merge")
    engine = manifest.base.ref if manifest and made_by in (*_TUNED, "merge") and manifest.base else build.model_label
    return levers, Path(engine).name if is_path(engine) and not build.is_remote else engine


def _without(data: dict, lever: str, build: Build, models: ModelStore) -> dict | None:
    """`data` with one lever removed; None when there is no way to tell how."""
    out = copy.deepcopy(data)
    if lever == "prompt":
        for key in ("system", "pinned", "messages"):
            out.pop(key, None)
    elif lever in ("styles", "knowledge"):
        out.pop(lever, None)
    elif lever == "fine-tune" and build.adapter:
        out.pop("adapter", None)
    else:  # a model made by train or merge: back to what it was made from
        manifest = _manifest(build, models)
        if manifest is None or manifest.base is None:
            return None
        out["from"] = manifest.base.ref  # an adapter, if any, stays: it is the fine-tune lever
    return out


def resolve_variants(spec: Spec, base_dir: Path, source: str) -> dict[str, Variant]:
    """Every variant of the spec as a build, in the spec's order; with `ablate`, the
    variant `X-minus-LEVER` for each lever of X (a variant of that name in the spec
    is used instead, to say how a lever is removed)."""
    models = ModelStore()
    variants: dict[str, Variant] = {}
    for name in spec.variants:
        data = _resolve_data(spec, name, base_dir, ())
        build = _final_build(data, f"{source}: variant {name!r}")
        levers, engine = levers_of(build, models)
        variants[name] = Variant(name, build, levers, engine, data=data)
    if spec.ablate is not None:
        if spec.ablate not in variants:
            raise InvalidInputError(f"ablate: unknown variant {spec.ablate!r} (known: {', '.join(variants)})")
        whole = variants[spec.ablate]
        for lever in whole.levers:
            name = f"{whole.name}-minus-{lever}"
            if name in variants:
                variants[name].ablates = (whole.name, lever)
                continue
            data = _without(whole.data, lever, whole.build, models)
            if data is None:
                continue
            build = _final_build(data, f"{source}: variant {name!r}")
            levers, engine = levers_of(build, models)
            variants[name] = Variant(name, build, levers, engine, ablates=(whole.name, lever), data=data)
    return variants
