"""The model store (like Ollama's): named models under `$PML_HOME/models/NAME/`."""

import fcntl
import re
from contextlib import contextmanager
from pathlib import Path

from pimpmyllama.atomic import atomic_dir, remove_dir_atomic, sweep_stale_temps
from pimpmyllama.errors import InvalidInputError, NotFoundError
from pimpmyllama.models.defaults import DEFAULT_MODEL, DEFAULT_SAMPLING, bundled_default_gguf
from pimpmyllama.models.importing import Progress, add_generation_defaults, import_into
from pimpmyllama.models.info import ModelInfo, read_model_info, weights_present
from pimpmyllama.paths import models_dir

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def check_name(name: str, what: str = "model") -> str:
    if not _NAME.match(name):
        raise InvalidInputError(
            f"invalid {what} name {name!r}: use lowercase letters, digits, '.', '_' and '-' (at most 64)"
        )
    return name


def default_name_for(source: Path) -> str:
    stem = source.name if source.is_dir() else source.stem
    name = re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-._")
    return name[:64] or "model"


class ModelStore:
    def __init__(self, root: Path | None = None):
        self.root = root or models_dir()
        self.root.mkdir(parents=True, exist_ok=True)

    def names(self) -> list[str]:
        sweep_stale_temps(self.root)
        return sorted(p.name for p in self.root.iterdir() if not p.name.startswith(".") and p.is_dir())

    def exists(self, name: str) -> bool:
        return (self.root / name).is_dir()

    def folder(self, name: str, progress: Progress | None = None) -> Path:
        """The folder of a stored model; the bundled default is imported on first use."""
        path = self.root / name
        if path.is_dir():
            return path
        if name == DEFAULT_MODEL:
            return self.ensure_default(progress)
        known = ", ".join(self.names()) or "none"
        raise NotFoundError(f"unknown model {name!r} (known: {known}; import one with `pml models import`)")

    def resolve(self, ref: str, progress: Progress | None = None) -> tuple[str, Path]:
        """A store name, or a path to a model folder, as (display name, folder)."""
        if _NAME.match(ref) and (self.exists(ref) or ref == DEFAULT_MODEL):
            return ref, self.folder(ref, progress)
        path = Path(ref).expanduser()
        if path.is_dir():
            if not weights_present(path):
                raise InvalidInputError(f"{path} is not a model folder (config.json and .safetensors needed)")
            return str(path), path
        if path.suffix.lower() == ".gguf" and path.exists():
            raise InvalidInputError(f"{path} is a GGUF file: import it first with `pml models import {path}`")
        return ref, self.folder(ref, progress)

    def info(self, name: str) -> ModelInfo:
        return read_model_info(name, self.folder(name))

    def remove(self, name: str) -> None:
        remove_dir_atomic(self.folder(name))

    def import_model(self, source: Path, name: str | None = None, progress: Progress | None = None) -> str:
        name = check_name(name or default_name_for(source))
        if self.exists(name):
            raise InvalidInputError(f"a model named {name!r} already exists (remove it first or pick --name)")
        with self._lock(), atomic_dir(self.root / name) as tmp:
            import_into(source, tmp, progress)
        return name

    def ensure_default(self, progress: Progress | None = None) -> Path:
        path = self.root / DEFAULT_MODEL
        with self._lock():
            if not path.is_dir():  # another process may have imported it while we waited
                source = bundled_default_gguf()
                with atomic_dir(path) as tmp:
                    import_into(source, tmp, progress)
                    add_generation_defaults(tmp, DEFAULT_SAMPLING)
        return path

    @contextmanager
    def _lock(self):
        """One import at a time per store, across processes."""
        with open(self.root / ".import.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

