"""A folder of named entries — the models or the adapters of the store — and the one
door through which entries are found, written and removed.

Every path comes from `entry(name)`, which accepts only a valid name (one path
component, see `pimpmyllama.names`), so nothing outside the folder can be read,
replaced or deleted through it: an absolute path, `..` or a separator is refused
before any file is touched, and an entry that is a link pointing outside is never
followed.

Writing goes through `create()`: the name is checked first (before any work), the
entry is written into a hidden temporary sibling, its manifest written and checked,
and only then renamed into place under the store's lock — an error, a Ctrl-C or a
kill leaves nothing under the entry's name (the temporary is swept later). An
existing name is refused unless `force` is given; then the old entry is replaced
in one rename.
"""

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pimpmyllama.atomic import atomic_dir, file_lock, remove_dir_atomic, sweep_stale_temps
from pimpmyllama.errors import InvalidInputError, NotFoundError
from pimpmyllama.models.manifest import Manifest, read_manifest
from pimpmyllama.names import check_name, is_valid_name
from pimpmyllama.paths import home_path

# The files that carry a model's tokenizer and chat format, copied from a parent.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                   "generation_config.json")


@dataclass
class Draft:
    """An entry being written: fill `folder`, set `manifest`; nothing is visible
    under the entry's name until the `create` block ends without error."""

    name: str
    folder: Path
    manifest: Manifest | None = None

    def copy_tokenizer_files(self, source: Path) -> None:
        for file in TOKENIZER_FILES:
            if (source / file).exists():
                shutil.copy2(source / file, self.folder / file)


class Shelf:
    def __init__(self, root: Path, kind: str, manifest_file: str, check: Callable[[Path], None]):
        self.root, self.kind, self.manifest_file, self._check = root, kind, manifest_file, check
        self.root.mkdir(parents=True, exist_ok=True)
        sweep_stale_temps(self.root)  # what a killed writer left behind

    # Finding ------------------------------------------------------------------

    def entry(self, name: str) -> Path:
        """The path of entry `name` (which may not exist): always directly in the root."""
        return self.root / check_name(name, self.kind)

    def exists(self, name: str) -> bool:
        return is_valid_name(name) and self._is_entry(self.root / name)

    def _is_entry(self, path: Path) -> bool:
        # A folder, or a link to a folder of this store; never a link leading outside it.
        return path.is_dir() and (not path.is_symlink() or self._inside(path))

    def _inside(self, path: Path) -> bool:
        return path.resolve().parent == self.root.resolve()

    def names(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if is_valid_name(p.name) and self._is_entry(p))

    def folder(self, name: str) -> Path:
        path = self.entry(name)
        if not self._is_entry(path):
            if path.is_symlink():
                raise InvalidInputError(f"{self.kind} {name!r} is a link pointing outside the store")
            raise NotFoundError(f"unknown {self.kind} {name!r} (known: {', '.join(self.names()) or 'none'})")
        return path

    def manifest(self, name: str) -> Manifest | None:
        return read_manifest(self.folder(name) / self.manifest_file, self.kind)

    # Removing -----------------------------------------------------------------

    def remove(self, name: str) -> None:
        path = self.entry(name)
        if path.is_symlink():
            path.unlink()  # the link only, never what it points to
            return
        remove_dir_atomic(self.folder(name))

    # Writing ------------------------------------------------------------------

    def check_new(self, name: str, force: bool = False) -> str:
        """Call before any work: the name is valid, and free unless `force`."""
        path = self.entry(name)
        if (path.exists() or path.is_symlink()) and not force:
            raise InvalidInputError(f"a {self.kind} named {name!r} already exists (remove it, pick another "
                                    "name, or use --force to replace it)")
        return name

    @contextmanager
    def create(self, name: str, *, force: bool = False,
               check: Callable[[Path], None] | None = None) -> Iterator[Draft]:
        """Write a new entry; see the module's docstring for what is guaranteed."""
        final = self.entry(self.check_new(name, force))
        with atomic_dir(final, replace=True, publish=self._publish(name, force)) as tmp:
            draft = Draft(name, tmp)
            yield draft
            if draft.manifest is None:
                raise RuntimeError(f"{self.kind} {name!r} was written without a manifest")
            (tmp / self.manifest_file).write_text(draft.manifest.to_json(), encoding="utf-8")
            self._check(tmp)
            if check is not None:
                check(tmp)

    def _publish(self, name: str, force: bool) -> Callable[[Callable[[], None]], None]:
        """Run the final rename under the lock, refusing a name taken meanwhile."""

        def publish(rename: Callable[[], None]) -> None:
            with self.lock():
                self.check_new(name, force)
                rename()

        return publish

    def lock(self):
        """One writer at a time per folder, across processes."""
        return file_lock(self.root / ".lock")


def sweep_store() -> None:
    """Remove what killed writers left in the store's folders (run as any command starts)."""
    for folder in ("models", "adapters", "builds"):
        try:
            sweep_stale_temps(home_path() / folder)
        except OSError:
            pass  # an unreadable folder is reported by the command that needs it
