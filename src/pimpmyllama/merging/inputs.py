"""A recipe's inputs: store models, model folders, and `model+adapter` (mergekit's
syntax: the adapter's LoRA update is added to each tensor as it is read)."""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.models.adapters import Adapter, base_fingerprint
from pimpmyllama.models.info import read_config
from pimpmyllama.models.weights import TensorFiles
from pimpmyllama.prompting.refs import resolve_model_of


def layer_count(config: dict) -> int:
    return int(config["num_hidden_layers"])


def vocabulary(folder: Path) -> dict[str, int] | None:
    """token -> id, from tokenizer.json (model vocabulary plus added tokens)."""
    path = folder / "tokenizer.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    vocab = dict(data.get("model", {}).get("vocab") or {})
    if isinstance(data.get("model", {}).get("vocab"), list):  # unigram: [[piece, score], ...]
        vocab = {piece: i for i, (piece, _) in enumerate(data["model"]["vocab"])}
    for token in data.get("added_tokens", []):
        vocab[token["content"]] = token["id"]
    return vocab


@dataclass
class Source:
    ref: str  # as written in the recipe
    name: str
    folder: Path
    adapter: Path | None
    config: dict
    files: TensorFiles
    applied: object = None  # the adapter, when the reference is model+adapter

    @property
    def layers(self) -> int:
        return layer_count(self.config)

    def has(self, tensor: str) -> bool:
        return tensor in self.files.index

    def shape(self, tensor: str) -> tuple[int, ...]:
        return self.files.shape(tensor)

    def read(self, tensor: str) -> torch.Tensor:
        value = self.files.read(tensor)
        return self.applied.apply(tensor, value) if self.applied is not None else value

    def identity(self) -> dict:
        """What the merged model's record says about this input."""
        out = {"ref": self.ref, "path": str(self.folder), "fingerprint": base_fingerprint(self.folder)}
        if self.adapter:
            out["adapter"] = str(self.adapter)
            weights = self.adapter / "adapter_model.safetensors"
            out["adapter_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
        return out


def resolve_source(ref: str) -> Source:
    """A recipe's model: MODEL, MODEL+ADAPTER or a build's model (see `prompting.refs`)."""
    resolved = resolve_model_of(ref)
    config = read_config(resolved.folder)
    if "num_hidden_layers" not in config:
        raise InvalidInputError(f"{resolved.name}: config.json has no num_hidden_layers; only layered decoders "
                                "can be merged")
    applied = Adapter(resolved.adapter) if resolved.adapter else None
    return Source(ref, resolved.label, resolved.folder, resolved.adapter, config, TensorFiles(resolved.folder),
                  applied)
