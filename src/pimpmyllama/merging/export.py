"""`pml export`: a model, or a model with an adapter merged in, as a standalone Hugging
Face folder (`hf`), a GGUF file (`gguf`), a folder for Ollama (`ollama`: GGUF +
Modelfile), or an adapter as a GGUF LoRA (`gguf-lora`) — written one tensor at a time
(peak memory: about one tensor)."""

from collections.abc import Callable
from pathlib import Path

import torch

from pimpmyllama.atomic import atomic_dir
from pimpmyllama.errors import InvalidInputError
from pimpmyllama.generation.checks import check_model_runs
from pimpmyllama.models.adapters import AdapterStore, load_adapter
from pimpmyllama.models.importing import verify_model_folder
from pimpmyllama.models.manifest import MODEL_MANIFEST, Manifest, Parent
from pimpmyllama.models.refs import ResolvedModel, is_path, resolve_model, split_adapter
from pimpmyllama.models.shards import TensorSpec, write_streaming
from pimpmyllama.models.shelf import TOKENIZER_FILES
from pimpmyllama.models.weights import TensorFiles, read_header, safetensors_files
from pimpmyllama.names import is_valid_name
from pimpmyllama.progress import Progress
from pimpmyllama.prompting.build import Build
from pimpmyllama.prompting.refs import resolve_build, resolve_model_of

MANIFEST = MODEL_MANIFEST


def model_tensors(model: ResolvedModel) -> tuple[list[TensorSpec], Callable[[TensorSpec], torch.Tensor]]:
    """The model's tensors, by name, and a reader of one tensor at a time with the
    adapter (if any) applied."""
    applied = load_adapter(model.adapter, model.folder, model.name) if model.adapter else None
    headers = {}
    for path in safetensors_files(model.folder):
        headers.update(read_header(path))
    specs = [TensorSpec(n, headers[n]["dtype"], tuple(headers[n]["shape"])) for n in sorted(headers)]
    files = TensorFiles(model.folder)

    def produce(spec: TensorSpec):
        tensor = files.read(spec.name)
        return applied.apply(spec.name, tensor) if applied else tensor

    return specs, produce


def write_with_adapter(folder: Path, model: ResolvedModel, progress: Progress | None = None, *,
                       made_by: str = "export") -> Manifest:
    """Write the model (with its adapter applied, if any) into `folder`, one tensor at
    a time; returns the manifest that describes it."""
    for file in ("config.json", *TOKENIZER_FILES):
        if (model.folder / file).exists():
            (folder / file).write_bytes((model.folder / file).read_bytes())
    specs, produce = model_tensors(model)
    write_streaming(folder, specs, produce,
                    on_tensor=(lambda done, total: progress("merging", done, total)) if progress else None)
    parent = Parent(ref=model.ref, path=str(model.folder), adapter=str(model.adapter) if model.adapter else None)
    return Manifest(kind="model", made_by=made_by, parents=[parent],
                    source=f"{model.name} + adapter {model.adapter.name}" if model.adapter else model.name)


def is_adapter_alone(ref: str) -> bool:
    """Whether `ref` names an adapter by itself (a store name or a PEFT folder)."""
    target, adapter = split_adapter(ref)
    if adapter:
        return False
    if is_path(target):
        return (Path(target).expanduser() / "adapter_config.json").exists()
    return is_valid_name(target) and AdapterStore().exists(target)


def export_target(ref: str, base: str | None = None) -> ResolvedModel:
    """MODEL, MODEL+ADAPTER, a build (its model and adapter), or an adapter alone (merged
    into the base it records, or `base`)."""
    target, _ = split_adapter(ref)
    adapters = AdapterStore()
    if not is_adapter_alone(ref):
        if base:
            raise InvalidInputError("--base is for exporting an adapter alone")
        return resolve_model_of(ref)
    manifest = adapters.meta(target) if not is_path(target) else None
    base_ref = base or (manifest.base.ref if manifest and manifest.base else None)
    if not base_ref:
        raise InvalidInputError(f"adapter {target} does not say its base model: give --base")
    return resolve_model(base_ref, adapter=target)


def export_model(ref: str, output: Path, base: str | None = None, progress: Progress | None = None, *,
                 format: str = "hf", quant: str | None = None) -> Path:
    """`ref` exported in `format` (see FORMATS) at `output`, complete or not at all;
    `quant` (f16, f32, q8_0, q4_1) is for the GGUF formats."""
    if format not in FORMATS:
        raise InvalidInputError(f"unknown export format {format!r} (known: {', '.join(FORMATS)})")
    if quant is not None and format not in QUANTIZED:
        raise InvalidInputError(f"--quant is for --format {' or '.join(QUANTIZED)}")
    return FORMATS[format](ref, output, base, progress, quant or "f16")


def _export_hf(ref: str, output: Path, base: str | None, progress: Progress | None, quant: str) -> Path:
    """A standalone Hugging Face model folder at `output` (new, or empty)."""
    model = export_target(ref, base)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise InvalidInputError(f"{output} exists and is not an empty folder")
    with atomic_dir(output, replace=output.exists()) as tmp:
        manifest = write_with_adapter(tmp, model, progress)
        (tmp / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
        verify_model_folder(tmp)
        check_model_runs(tmp)
    return output


def _export_gguf(ref: str, output: Path, base: str | None, progress: Progress | None, quant: str) -> Path:
    from pimpmyllama.merging.gguf.targets import export_gguf

    return export_gguf(export_target(ref, base), output, quant, progress)


def _export_ollama(ref: str, output: Path, base: str | None, progress: Progress | None, quant: str) -> Path:
    from pimpmyllama.merging.gguf.targets import export_ollama

    model = export_target(ref, base)
    # An adapter alone exports with a plain build of its base; anything else is a build.
    build = Build.model_validate({"from": str(model.folder)}) if is_adapter_alone(ref) else resolve_build(ref).build
    return export_ollama(model, build, output, quant, progress, source=ref)


def _export_gguf_lora(ref: str, output: Path, base: str | None, progress: Progress | None, quant: str) -> Path:
    from pimpmyllama.merging.gguf.targets import export_gguf_lora

    return export_gguf_lora(export_target(ref, base), output)


FORMATS = {"hf": _export_hf, "gguf": _export_gguf, "ollama": _export_ollama, "gguf-lora": _export_gguf_lora}
QUANTIZED = ("gguf", "ollama")
