"""The build store: named builds under `$PML_HOME/builds/NAME.yml`.

Every path comes from a checked name (`pimpmyllama.names`), so no build name can
read, replace or delete a file outside the folder.
"""

from pathlib import Path

from pimpmyllama.atomic import write_text_atomic
from pimpmyllama.errors import NotFoundError
from pimpmyllama.names import check_name, is_valid_name
from pimpmyllama.paths import builds_dir
from pimpmyllama.prompting.build import Build, parse_build


class BuildStore:
    def __init__(self, root: Path | None = None):
        self.root = root or builds_dir()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, name: str) -> Path:
        return self.root / f"{check_name(name, 'build')}.yml"

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("*.yml") if is_valid_name(p.stem) and p.is_file())

    def exists(self, name: str) -> bool:
        return is_valid_name(name) and self._path(name).is_file()

    def get(self, name: str) -> Build:
        if not self._path(name).is_file():
            raise NotFoundError(f"unknown build {name!r} (known: {', '.join(self.names()) or 'none'})")
        return parse_build(self._path(name).read_text(encoding="utf-8"), f"build {name}")

    def text(self, name: str) -> str:
        self.get(name)
        return self._path(name).read_text(encoding="utf-8")

    def save(self, name: str, build: Build) -> None:
        write_text_atomic(self._path(name), build.to_yaml())

    def remove(self, name: str) -> None:
        self.get(name)
        self._path(name).unlink()
