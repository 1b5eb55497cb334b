"""Where pimpmyllama keeps its state: `$PML_HOME`, default `~/.pimpmyllama`."""

import os
from pathlib import Path

from pimpmyllama.errors import PmlError


def home_path() -> Path:
    """Where `$PML_HOME` points (not created)."""
    home = os.environ.get("PML_HOME")
    return Path(home).expanduser() if home else Path.home() / ".pimpmyllama"


def pml_home() -> Path:
    path = home_path()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PmlError(f"PML_HOME {path} is not a folder that can be used ({exc.strerror})") from None
    return path


def models_dir() -> Path:
    return _sub("models")


def builds_dir() -> Path:
    return _sub("builds")


def adapters_dir() -> Path:
    return _sub("adapters")


def runs_dir() -> Path:
    return _sub("runs")


def uploads_dir() -> Path:
    """Documents uploaded through the server, one folder per knowledge base."""
    return _sub("uploads")


def database_path() -> Path:
    return pml_home() / "pml.db"


def _sub(name: str) -> Path:
    path = pml_home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path
