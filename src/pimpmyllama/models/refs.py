"""Model references: what a user types to name a model, resolved in one place.

    MODEL_REF   := MODEL [ "+" ADAPTER ]
    MODEL       := a store name (`smollm2-135m-instruct`)   | a model folder path
    ADAPTER     := an adapter store name (`form`)           | an adapter folder path

A reference is a path when it holds a '/' or starts with '.' or '~'; otherwise it
is a name, looked up in the store (names cannot hold '+', '/' or ':'). `model:NAME`
says "the model, not a build of that name" when both exist. Builds and build files
are resolved one layer up (`prompting.refs`), on top of this.
"""

from dataclasses import dataclass
from pathlib import Path

from pimpmyllama.errors import InvalidInputError, NotFoundError
from pimpmyllama.models.adapters import AdapterStore, load_adapter
from pimpmyllama.models.defaults import DEFAULT_MODEL
from pimpmyllama.models.info import weights_present
from pimpmyllama.models.store import ModelStore
from pimpmyllama.names import is_valid_name
from pimpmyllama.progress import Progress

MODEL_PREFIX = "model:"


def is_path(ref: str) -> bool:
    return "/" in ref or ref.startswith((".", "~"))


def split_adapter(ref: str) -> tuple[str, str | None]:
    """'model+adapter' -> ('model', 'adapter'); a folder whose own name holds '+' stays whole."""
    if "+" not in ref or (is_path(ref) and Path(ref).expanduser().exists()):
        return ref, None
    model, adapter = ref.rsplit("+", 1)
    if not model or not adapter:
        raise InvalidInputError(f"{ref!r}: write MODEL+ADAPTER with both parts")
    return model, adapter


@dataclass(frozen=True)
class ResolvedModel:
    ref: str             # as the user wrote it
    name: str            # for display and records: the store name or the folder
    folder: Path
    adapter: Path | None = None

    @property
    def label(self) -> str:
        return f"{self.name}+{self.adapter.name}" if self.adapter else self.name


def model_exists(ref: str, models: ModelStore | None = None) -> bool:
    """Whether `ref` (no adapter) names a stored model, the bundled default included."""
    ref = ref.removeprefix(MODEL_PREFIX)
    return ref == DEFAULT_MODEL or (models or ModelStore()).exists(ref)


def resolve_model_folder(ref: str, progress: Progress | None = None,
                         models: ModelStore | None = None) -> tuple[str, Path]:
    """A model (no adapter) as (display name, folder)."""
    models = models or ModelStore()
    ref = ref.removeprefix(MODEL_PREFIX)
    if not ref:
        raise InvalidInputError("empty model reference")
    if not is_path(ref):
        if not is_valid_name(ref):
            raise NotFoundError(f"unknown model {ref!r} (known: {', '.join(models.names()) or 'none'})")
        return ref, models.folder(ref, progress)
    path = Path(ref).expanduser()
    if path.suffix.lower() == ".gguf" and path.is_file():
        raise InvalidInputError(f"{path} is a GGUF file: import it first with `pml models import {path}`")
    if not path.exists():
        raise NotFoundError(f"{path} does not exist")
    if not path.is_dir() or not weights_present(path):
        raise InvalidInputError(f"{path} is not a model folder (config.json and .safetensors needed)")
    return str(path), path


def resolve_adapter(ref: str, adapters: AdapterStore | None = None) -> Path:
    """An adapter store name or an adapter folder."""
    adapters = adapters or AdapterStore()
    if not is_path(ref):
        if not is_valid_name(ref):
            raise NotFoundError(f"unknown adapter {ref!r} (known: {', '.join(adapters.names()) or 'none'})")
        return adapters.folder(ref)
    path = Path(ref).expanduser()
    if not (path / "adapter_config.json").is_file():
        raise InvalidInputError(f"{path} is not an adapter folder (adapter_config.json needed)")
    return path


def resolve_model(ref: str, progress: Progress | None = None, *, adapter: str | None = None,
                  check_fit: bool = True, models: ModelStore | None = None) -> ResolvedModel:
    """MODEL or MODEL+ADAPTER (or MODEL with `adapter` given apart); the adapter is
    checked to fit the model unless `check_fit` is False."""
    model_ref, in_ref = split_adapter(ref)
    if in_ref and adapter and in_ref != adapter:
        raise InvalidInputError(f"two adapters given: {in_ref!r} in {ref!r} and {adapter!r}")
    adapter = in_ref or adapter
    name, folder = resolve_model_folder(model_ref, progress, models)
    if not adapter:
        return ResolvedModel(ref, name, folder)
    adapter_folder = resolve_adapter(adapter)
    if check_fit:
        load_adapter(adapter_folder, folder, name)
    return ResolvedModel(ref, name, folder, adapter_folder)
