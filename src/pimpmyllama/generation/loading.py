"""Loading a stored model into the backend that runs it."""

import json
from pathlib import Path

import torch

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.generation.llama import LlamaModel, LlamaSpec, lean_unsupported_reason
from pimpmyllama.models.weights import open_tensors


def load_backend(folder: Path, dtype=torch.float32, adapter: Path | None = None):
    """The lean Llama forward where it applies, transformers otherwise; a LoRA adapter,
    if given, is merged into the weights as they load."""
    config_path = folder / "config.json"
    if not config_path.exists():
        raise InvalidInputError(f"{folder} has no config.json")
    config = json.loads(config_path.read_text())
    applied = None
    if adapter is not None:
        from pimpmyllama.models.adapters import load_adapter

        applied = load_adapter(adapter, folder, folder.name)
    if lean_unsupported_reason(config) is not None:
        from pimpmyllama.generation.hf_backend import HFBackend

        return HFBackend(folder, dtype, applied)
    spec = LlamaSpec.from_config(config)
    with open_tensors(folder) as reader:
        get = applied.wrap(reader.get) if applied else reader.get
        try:
            return LlamaModel(spec, get, dtype)
        except KeyError as exc:
            raise InvalidInputError(f"{folder.name}: tensor {exc.args[0]} is missing from the weights") from None
        except RuntimeError as exc:  # shape mismatches surface from torch.cat/linear
            raise InvalidInputError(f"{folder.name}: weights do not match config.json ({exc})") from None
