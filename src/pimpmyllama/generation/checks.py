"""The engine's check of a newly written model: it loads and computes finite logits.

Producers pass it to the store's writer (`ModelStore.create(check=...)`), so a
model that cannot run never appears in the store under its name.
"""

from pathlib import Path

import torch

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.generation.llama import lean_unsupported_reason
from pimpmyllama.generation.loading import load_backend
from pimpmyllama.models.info import read_config


def check_model_runs(folder: Path) -> None:
    if lean_unsupported_reason(read_config(folder)) is not None:
        return  # only transformers runs it; loading it here would cost more than the import
    backend = load_backend(folder)
    logits = backend.forward([0, 1], backend.new_cache(2), 0)
    if not torch.isfinite(logits).all():
        raise InvalidInputError("the model computes NaN or infinite logits")
