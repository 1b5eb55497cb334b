"""From what a user types (a build name, a build file, a model name or folder) to a
build and a loaded engine."""

from dataclasses import dataclass
from pathlib import Path

from pimpmyllama.errors import NotFoundError
from pimpmyllama.models.defaults import DEFAULT_MODEL
from pimpmyllama.models.importing import Progress
from pimpmyllama.models.store import ModelStore
from pimpmyllama.prompting.build import Build, load_build_file
from pimpmyllama.prompting.builds import BuildStore


@dataclass
class ResolvedBuild:
    ref: str | None  # what the user named; recorded with sessions
    build: Build


def resolve_build(ref: str | None, builds: BuildStore | None = None, models: ModelStore | None = None) -> ResolvedBuild:
    if ref is None:
        return ResolvedBuild(None, Build())
    builds = builds or BuildStore()
    models = models or ModelStore()
    path = Path(ref).expanduser()
    if path.suffix.lower() in (".yml", ".yaml"):
        return ResolvedBuild(str(path), load_build_file(path))
    if builds.exists(ref):
        return ResolvedBuild(ref, builds.get(ref))
    if ref == DEFAULT_MODEL or models.exists(ref) or path.is_dir():
        return ResolvedBuild(ref, Build.model_validate({"from": ref}))
    raise NotFoundError(
        f"unknown build or model {ref!r} (builds: {', '.join(builds.names()) or 'none'}; "
        f"models: {', '.join(models.names()) or 'none'})"
    )


def check_model_ref(ref: str, models: ModelStore | None = None, adapter: str | None = None) -> None:
    """Fail now, not at the first chat, when a build names a model (or an adapter) that
    is not there, or an adapter that does not fit its model."""
    models = models or ModelStore()
    if not (ref == DEFAULT_MODEL or models.exists(ref)):
        models.resolve(ref)
    if adapter:
        from pimpmyllama.models.adapters import check_adapter_base

        name, folder = models.resolve(ref)
        check_adapter_base(adapter_folder(adapter), folder, name)


def adapter_folder(ref: str) -> Path:
    from pimpmyllama.models.adapters import AdapterStore

    store = AdapterStore()
    if store.exists(ref):
        return store.folder(ref)
    path = Path(ref).expanduser()
    if (path / "adapter_config.json").exists():
        return path
    return store.folder(ref)  # raises, listing the known adapters


def load_engine(model_ref: str, progress: Progress | None = None, adapter: str | None = None,
                precision: str | None = None):
    from pimpmyllama.generation.engine import Engine

    name, folder = ModelStore().resolve(model_ref, progress)
    return Engine.load(name, folder, adapter_folder(adapter) if adapter else None, precision)
