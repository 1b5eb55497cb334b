"""`pml export`: a standalone Hugging Face model folder, an adapter merged into its base,
written one tensor at a time (peak memory: one tensor, not the model)."""

import json
import shutil
from pathlib import Path

from pimpmyllama.atomic import atomic_dir
from pimpmyllama.errors import InvalidInputError
from pimpmyllama.models.importing import Progress, verify_model_folder
from pimpmyllama.models.shards import TensorSpec, write_streaming
from pimpmyllama.models.weights import TensorFiles, read_header, safetensors_files

COPIED = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
          "special_tokens_map.json", "chat_template.jinja")


def write_with_adapter(folder: Path, base_name: str, base_folder: Path, adapter: Path | None,
                       progress: Progress | None = None, about: dict | None = None) -> None:
    """Write base + adapter as a standalone model into `folder`, one tensor at a time."""
    from pimpmyllama.models.adapters import load_adapter

    applied = load_adapter(adapter, base_folder, base_name) if adapter else None
    for file in COPIED:
        if (base_folder / file).exists():
            shutil.copy2(base_folder / file, folder / file)
    headers = {}
    for path in safetensors_files(base_folder):
        headers.update(read_header(path))
    specs = [TensorSpec(n, headers[n]["dtype"], tuple(headers[n]["shape"])) for n in sorted(headers)]
    files = TensorFiles(base_folder)

    def produce(spec: TensorSpec):
        tensor = files.read(spec.name)
        return applied.apply(spec.name, tensor) if applied else tensor

    write_streaming(folder, specs, produce,
                    on_tensor=(lambda done, total: progress("merging", done, total)) if progress else None)
    record = {"source": f"{base_name} + adapter {adapter.name}" if adapter else base_name, "format": "hf",
              "base": base_name, "adapter": str(adapter) if adapter else None, **(about or {})}
    (folder / "pml-model.json").write_text(json.dumps(record, indent=2))
    verify_model_folder(folder)


def export_model(name: str, output: Path, base: str | None = None, progress: Progress | None = None) -> Path:
    from pimpmyllama.chat.resolve import adapter_folder
    from pimpmyllama.models.adapters import AdapterStore
    from pimpmyllama.models.store import ModelStore

    models = ModelStore()
    adapter = None
    if AdapterStore().exists(name) or (Path(name) / "adapter_config.json").exists():
        adapter = adapter_folder(name)
        meta_path = adapter / "pml-adapter.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        base_ref = base or meta.get("base")
        if not base_ref:
            raise InvalidInputError(f"adapter {name} does not say its base model: give --base")
        base_name, base_folder = models.resolve(base_ref)
    else:
        base_name, base_folder = models.resolve(name)
    if output.exists() and any(output.iterdir()):
        raise InvalidInputError(f"{output} exists and is not empty")
    with atomic_dir(output, replace=output.exists()) as tmp:
        write_with_adapter(tmp, base_name, base_folder, adapter, progress, {"exported_from": name})
    return output
