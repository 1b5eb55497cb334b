"""`pml export`: a standalone Hugging Face model folder, an adapter merged into its base,
written one tensor at a time (peak memory: one tensor, not the model)."""

import json
import shutil
from pathlib import Path

from pimpmyllama.atomic import atomic_dir
from pimpmyllama.errors import InvalidInputError
from pimpmyllama.models.importing import Progress, verify_model_folder
from pimpmyllama.models.shards import TensorSpec, write_streaming
from pimpmyllama.models.weights import open_tensors, read_header, safetensors_files

COPIED = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
          "special_tokens_map.json", "chat_template.jinja")


def export_model(name: str, output: Path, base: str | None = None, progress: Progress | None = None) -> Path:
    from pimpmyllama.chat.resolve import adapter_folder
    from pimpmyllama.models.adapters import AdapterStore, adapter_deltas, check_adapter_base, with_adapter
    from pimpmyllama.models.store import ModelStore

    models = ModelStore()
    adapters = AdapterStore()
    deltas: dict = {}
    about = {"exported_from": name}
    if adapters.exists(name) or (Path(name) / "adapter_config.json").exists():
        folder = adapter_folder(name)
        meta = json.loads((folder / "pml-adapter.json").read_text()) if (folder / "pml-adapter.json").exists() else {}
        base_ref = base or meta.get("base")
        if not base_ref:
            raise InvalidInputError(f"adapter {name} does not say its base model: give --base")
        base_name, base_folder = models.resolve(base_ref)
        check_adapter_base(folder, base_folder, base_name)
        deltas = adapter_deltas(folder)
        about.update({"base": base_name, "adapter": str(folder)})
    else:
        base_name, base_folder = models.resolve(name)
    if output.exists() and any(output.iterdir()):
        raise InvalidInputError(f"{output} exists and is not empty")
    with atomic_dir(output, replace=output.exists()) as tmp:
        for file in COPIED:
            if (base_folder / file).exists():
                shutil.copy2(base_folder / file, tmp / file)
        headers = {}
        for path in safetensors_files(base_folder):
            headers.update(read_header(path))
        specs = [TensorSpec(n, headers[n]["dtype"], tuple(headers[n]["shape"])) for n in sorted(headers)]
        with open_tensors(base_folder) as reader:
            get = with_adapter(reader.get, deltas)
            write_streaming(tmp, specs, lambda spec: get(spec.name),
                            on_tensor=lambda done, total: progress and progress("merging", done, total))
        (tmp / "pml-export.json").write_text(json.dumps(about, indent=2))
        verify_model_folder(tmp)
    return output
