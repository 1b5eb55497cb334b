"""What `pml models show` tells about a stored model, read without loading weights."""

import json
from dataclasses import dataclass
from pathlib import Path

from pimpmyllama.models.manifest import MODEL_MANIFEST, read_manifest
from pimpmyllama.models.weights import safetensors_files, tensor_shapes
from pimpmyllama.errors import InvalidInputError


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
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"{folder} is not a model folder (no config.json)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"{path} cannot be read ({exc})") from None
    if not isinstance(config, dict):
        raise InvalidInputError(f"{path} is not a JSON object")
    return config


def has_chat_template(folder: Path) -> bool:
    if (folder / "chat_template.jinja").exists():
        return True
    try:
        return bool(json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8")).get("chat_template"))
    except (OSError, ValueError, AttributeError):
        return False


def read_model_info(name: str, folder: Path) -> ModelInfo:
    config = read_config(folder)
    manifest = read_manifest(folder / MODEL_MANIFEST, "model")
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
        has_chat_template=has_chat_template(folder),
        size_bytes=sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()),
        source=manifest.source if manifest else "?",
        imported_at=manifest.created_at if manifest else "?",
    )


def weights_present(folder: Path) -> bool:
    return (folder / "config.json").exists() and bool(safetensors_files(folder))
