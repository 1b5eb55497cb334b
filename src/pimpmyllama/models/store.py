"""The model store (like Ollama's): named models under `$PML_HOME/models/NAME/`.

Every model is written through the store's one door (`Shelf.create`), whatever
made it — an import, a training run, a merge, an export — and checked before it
appears under its name: every tensor readable and finite, a tokenizer present.
Producers that can run the model pass a further check that does.
"""

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from pimpmyllama.atomic import file_lock
from pimpmyllama.errors import NotFoundError, PmlError
from pimpmyllama.models.defaults import DEFAULT_MODEL, DEFAULT_SAMPLING, bundled_default_gguf
from pimpmyllama.models.importing import add_generation_defaults, import_into, verify_model_folder
from pimpmyllama.models.info import ModelInfo, read_model_info
from pimpmyllama.models.manifest import MODEL_MANIFEST, Manifest
from pimpmyllama.models.prepared_files import forget_prepared
from pimpmyllama.models.shelf import Draft, Shelf
from pimpmyllama.names import name_from
from pimpmyllama.paths import models_dir
from pimpmyllama.progress import Progress

MANIFEST = MODEL_MANIFEST


def default_name_for(source: Path) -> str:
    return name_from((source.name if source.is_dir() else source.stem).lower())


@dataclass
class Listed:
    """A folder of the store: its info, or why it is not a usable model."""

    name: str
    info: ModelInfo | None
    problem: str | None = None


class ModelStore:
    def __init__(self, root: Path | None = None):
        self.shelf = Shelf(root or models_dir(), "model", MANIFEST, verify_model_folder)
        self.root = self.shelf.root

    def names(self) -> list[str]:
        return self.shelf.names()

    def exists(self, name: str) -> bool:
        return self.shelf.exists(name)

    def folder(self, name: str, progress: Progress | None = None) -> Path:
        """The folder of a stored model; the bundled default is imported on first use."""
        if name == DEFAULT_MODEL and not self.exists(name):
            return self.ensure_default(progress)
        try:
            return self.shelf.folder(name)
        except NotFoundError:
            raise NotFoundError(f"unknown model {name!r} (known: {', '.join(self.names()) or 'none'}; "
                                "import one with `pml models import`)") from None

    def info(self, name: str) -> ModelInfo:
        return read_model_info(name, self.folder(name))

    def listing(self) -> list[Listed]:
        """Every folder of the store, usable or not (a listing never fails on one)."""
        rows = []
        for name in self.names():
            try:
                rows.append(Listed(name, self.info(name)))
            except PmlError as exc:
                rows.append(Listed(name, None, str(exc)))
            except (OSError, ValueError, KeyError) as exc:
                rows.append(Listed(name, None, f"not a model folder ({type(exc).__name__}: {exc})"))
        return rows

    def manifest(self, name: str) -> Manifest | None:
        return self.shelf.manifest(name)

    def remove(self, name: str) -> None:
        folder = self.shelf.entry(name).resolve()  # a linked model's own folder, as loads see it
        self.shelf.remove(name)
        forget_prepared(folder)

    def create(self, name: str, *, force: bool = False,
               check: Callable[[Path], None] | None = None) -> AbstractContextManager[Draft]:
        """The one door for writing a model (see `Shelf.create`)."""
        return self.shelf.create(name, force=force, check=check)

    def check_new(self, name: str, force: bool = False) -> str:
        return self.shelf.check_new(name, force)

    def import_model(self, source: Path, name: str | None = None, progress: Progress | None = None, *,
                     force: bool = False, check: Callable[[Path], None] | None = None) -> str:
        name = self.check_new(name or default_name_for(source), force)
        with self.create(name, force=force, check=check) as draft:
            draft.manifest = import_into(source, draft.folder, progress)
        return name

    def ensure_default(self, progress: Progress | None = None) -> Path:
        # The import takes tens of seconds: processes that need the default at once
        # wait for the first one rather than each importing it.
        with file_lock(self.root / ".default.lock"):
            if not self.exists(DEFAULT_MODEL):  # another process may have imported it while we waited
                with self.create(DEFAULT_MODEL) as draft:
                    draft.manifest = import_into(bundled_default_gguf(), draft.folder, progress)
                    add_generation_defaults(draft.folder, DEFAULT_SAMPLING)
        return self.shelf.folder(DEFAULT_MODEL)
