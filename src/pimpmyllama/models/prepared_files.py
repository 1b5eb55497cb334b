"""Where a model's prepared weights (generation/prepared.py) are kept, so that the
store can remove them with the model."""

import hashlib
from pathlib import Path

from pimpmyllama.paths import pml_home


def prepared_dir() -> Path:
    return pml_home() / "cache" / "prepared"


def folder_tag(folder: Path) -> str:
    """The start of the names of the files kept for this model folder (its name, and a
    hash of where it is: two folders of one name elsewhere do not share files)."""
    return f"{folder.name}-{hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:8]}"


def kept_for(folder: Path) -> list[Path]:
    directory = prepared_dir()
    return sorted(directory.glob(f"{folder_tag(folder)}-*.safetensors")) if directory.exists() else []


def forget_prepared(folder: Path) -> None:
    """Remove what is kept for a model folder (when the model leaves the store)."""
    for path in kept_for(folder):
        path.unlink(missing_ok=True)
