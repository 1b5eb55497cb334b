"""`pml export`: a standalone Hugging Face model folder — a model, or a model with an
adapter merged in — written one tensor at a time (peak memory: one tensor)."""

from pathlib import Path

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
from pimpmyllama.prompting.refs import resolve_model_of

MANIFEST = MODEL_MANIFEST


def write_with_adapter(folder: Path, model: ResolvedModel, progress: Progress | None = None, *,
                       made_by: str = "export") -> Manifest:
    """Write the model (with its adapter applied, if any) into `folder`, one tensor at
    a time; returns the manifest that describes it."""
    applied = load_adapter(model.adapter, model.folder, model.name) if model.adapter else None
    for file in ("config.json", *TOKENIZER_FILES):
        if (model.folder / file).exists():
            (folder / file).write_bytes((model.folder / file).read_bytes())
    headers = {}
    for path in safetensors_files(model.folder):
        headers.update(read_header(path))
    specs = [TensorSpec(n, headers[n]["dtype"], tuple(headers[n]["shape"])) for n in sorted(headers)]
    files = TensorFiles(model.folder)

    def produce(spec: TensorSpec):
        tensor = files.read(spec.name)
        return applied.apply(spec.name, tensor) if applied else tensor

    write_streaming(folder, specs, produce,
                    on_tensor=(lambda done, total: progress("merging", done, total)) if progress else None)
    parent = Parent(ref=model.ref, path=str(model.folder), adapter=str(model.adapter) if model.adapter else None)
    return Manifest(kind="model", made_by=made_by, parents=[parent],
                    source=f"{model.name} + adapter {model.adapter.name}" if model.adapter else model.name)


def export_target(ref: str, base: str | None = None) -> ResolvedModel:
    """MODEL, MODEL+ADAPTER, a build (its model and adapter), or an adapter alone (merged
    into the base it records, or `base`)."""
    target, adapter = split_adapter(ref)
    adapters = AdapterStore()
    alone = not adapter and ((not is_path(target) and is_valid_name(target) and adapters.exists(target))
                             or (is_path(target) and (Path(target).expanduser() / "adapter_config.json").exists()))
    if not alone:
        if base:
            raise InvalidInputError("--base is for exporting an adapter alone")
        return resolve_model_of(ref)
    manifest = adapters.meta(target) if not is_path(target) else None
    base_ref = base or (manifest.base.ref if manifest and manifest.base else None)
    if not base_ref:
        raise InvalidInputError(f"adapter {target} does not say its base model: give --base")
    return resolve_model(base_ref, adapter=target)


def export_model(ref: str, output: Path, base: str | None = None, progress: Progress | None = None) -> Path:
    """A standalone model folder at `output` (new, or empty), complete or not at all."""
    model = export_target(ref, base)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise InvalidInputError(f"{output} exists and is not an empty folder")
    with atomic_dir(output, replace=output.exists()) as tmp:
        manifest = write_with_adapter(tmp, model, progress)
        (tmp / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
        verify_model_folder(tmp)
        check_model_runs(tmp)
    return output
