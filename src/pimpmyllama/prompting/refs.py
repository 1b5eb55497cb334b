"""References to what a chat runs: a build, a build file, or a model reference.

    REF := BUILD_FILE [ "+" ADAPTER ]     a path ending in .yml or .yaml
         | BUILD [ "+" ADAPTER ]          a stored build's name (`build:NAME` to insist)
         | MODEL_REF                      see `models.refs`: MODEL [ "+" ADAPTER ]

A name that is both a build and a model is refused as ambiguous, with the two
ways to say which. Every command that takes a model or a build resolves it here
or in `models.refs`, so the same text means the same thing, and fails with the
same line, everywhere.
"""

from dataclasses import dataclass
from pathlib import Path

from pimpmyllama.errors import InvalidInputError, NotFoundError
from pimpmyllama.models.refs import (MODEL_PREFIX, ResolvedModel, is_path, model_exists, resolve_adapter,
                                     resolve_model, resolve_model_folder, split_adapter)
from pimpmyllama.progress import Progress
from pimpmyllama.models.store import ModelStore
from pimpmyllama.names import is_valid_name
from pimpmyllama.prompting.build import Build, load_build_file
from pimpmyllama.prompting.builds import BuildStore

BUILD_PREFIX = "build:"


@dataclass
class ResolvedBuild:
    ref: str | None  # what the user named; recorded with sessions
    build: Build


def is_build_file(ref: str) -> bool:
    return Path(ref).suffix.lower() in (".yml", ".yaml")


def resolve_build(ref: str | None, builds: BuildStore | None = None,
                  models: ModelStore | None = None) -> ResolvedBuild:
    """What `ref` runs, as a build (a model reference becomes a build of that model).
    Models are checked to exist; the bundled default is imported later, on load."""
    if ref is None:
        return ResolvedBuild(None, Build())
    builds = builds or BuildStore()
    models = models or ModelStore()
    target, adapter = split_adapter(ref)
    if is_build_file(target):
        build = load_build_file(Path(target).expanduser())
    elif target.startswith(BUILD_PREFIX):
        build = builds.get(target.removeprefix(BUILD_PREFIX))
    elif not is_path(target) and not target.startswith(MODEL_PREFIX) and is_valid_name(target) \
            and builds.exists(target):
        if model_exists(target, models):
            raise InvalidInputError(f"{target!r} is both a build and a model: write build:{target} or "
                                    f"model:{target}")
        build = builds.get(target)
    else:
        build = Build.model_validate({"from": _checked_model(target, builds, models)})
    if adapter:
        resolve_adapter(adapter)
        build = build.model_copy(update={"adapter": adapter})
    return ResolvedBuild(ref, build)


def _checked_model(ref: str, builds: BuildStore, models: ModelStore) -> str:
    if is_path(ref) or model_exists(ref, models):
        if is_path(ref):
            resolve_model_folder(ref, models=models)  # a folder that is not a model fails here
        return ref.removeprefix(MODEL_PREFIX)
    raise NotFoundError(f"unknown build or model {ref!r} (builds: {', '.join(builds.names()) or 'none'}; "
                        f"models: {', '.join(models.names()) or 'none'})")


def resolve_model_of(ref: str, progress: Progress | None = None) -> ResolvedModel:
    """The model (and adapter) that `ref` runs: a model reference, or a build's."""
    build = resolve_build(ref).build
    return resolve_model(build.local_model(f"{ref!r}'s weights"), progress, adapter=build.adapter)
