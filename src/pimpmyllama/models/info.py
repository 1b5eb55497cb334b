"""What `pml models show` tells about a stored model, read without loading weights."""

import json
from dataclasses import dataclass
from pathlib import Path

from pimpmyllama.models.weights import safetensors_files, tensor_shapes
from pimpmyllama.prompting.tokenizer import read_chat_template


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: Path
    architecture: str
    parameters: int
    context_length: int
    has_chat_template: bool
    size_bytes: int
    source: str
    imported_at: str

    def as_dict(self) -> dict:
        d = self.__dict__.copy()
        d["path"] = str(self.path)
        return d


def read_config(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())


def read_model_info(name: str, folder: Path) -> ModelInfo:
    config = read_config(folder)
    meta_file = folder / "pml-model.json"
    meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    shapes = tensor_shapes(folder)
    parameters = 0
    for shape in shapes.values():
        n = 1
        for dim in shape:
            n *= dim
        parameters += n
    return ModelInfo(
        name=name,
        path=folder,
        architecture=config.get("model_type", "?"),
        parameters=parameters,
        context_length=int(config.get("max_position_embeddings", 0)),
        has_chat_template=bool(read_chat_template(folder)),
        size_bytes=sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()),
        source=meta.get("source", "?"),
        imported_at=meta.get("imported_at", "?"),
    )


def weights_present(folder: Path) -> bool:
    return (folder / "config.json").exists() and bool(safetensors_files(folder))
