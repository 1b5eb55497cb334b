"""Fingerprints: what a variant's answers depend on, hashed, so that cached answers
are reused exactly when nothing they depend on changed.

A variant's fingerprint covers the resolved build (its YAML, generation
parameters included), the model folder's files (name, size, modification time —
cheap, and any rewrite of a weight file changes them), the adapter's weights
(sha256 of their bytes) and each knowledge base's contents (its settings, and the
source and content hash of every document).
"""

import hashlib
import json
from pathlib import Path

from pimpmyllama.knowledge.store import KnowledgeStore
from pimpmyllama.models.refs import resolve_adapter, resolve_model_folder
from pimpmyllama.prompting.build import Build
from pimpmyllama.storage.db import open_database

_ADAPTER_HASHES: dict[tuple, str] = {}


def _digest(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def folder_listing(folder: Path) -> list[tuple[str, int, int]]:
    """(relative name, size, mtime in ns) of every file under `folder`."""
    rows = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            stat = path.stat()
            rows.append((str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns))
    return rows


def adapter_hash(folder: Path) -> str:
    """sha256 over the adapter's files' bytes (adapters are small); remembered per
    (file, size, mtime) within the process."""
    listing = folder_listing(folder)
    key = (str(folder.resolve()), tuple(listing))
    if key not in _ADAPTER_HASHES:
        digest = hashlib.sha256()
        for name, _, _ in listing:
            digest.update(name.encode("utf-8") + b"\0")
            digest.update((folder / name).read_bytes())
        _ADAPTER_HASHES[key] = digest.hexdigest()
    return _ADAPTER_HASHES[key]


def model_fingerprint(build: Build) -> str:
    """The weights a build runs: its model folder and its adapter; a remote model's
    endpoint and name (what the endpoint serves under that name is taken as fixed)."""
    if build.is_remote:
        return _digest({"remote": [build.from_.endpoint, build.from_.remote, build.from_.model]})
    _, folder = resolve_model_folder(build.from_)
    parts = {"model": folder_listing(folder)}
    if build.adapter:
        parts["adapter"] = adapter_hash(resolve_adapter(build.adapter))
    return _digest(parts)


def judge_fingerprint(build: Build) -> str:
    """What a judge's verdicts depend on: its weights and its chat template."""
    return _digest({"weights": model_fingerprint(build), "template": build.template})


def knowledge_contents(names: list[str], db=None) -> dict:
    if not names:
        return {}

    store = KnowledgeStore(db or open_database())
    contents = {}
    for name in names:
        kb = store.get(name)
        contents[name] = {
            "settings": [kb.embedder, kb.chunk_size, kb.overlap],
            "documents": [[d.source, d.content_hash] for d in store.documents(kb)],
        }
    return contents


def variant_fingerprint(build: Build, db=None) -> str:
    return _digest({
        "build": build.to_yaml(),
        "weights": model_fingerprint(build),
        "knowledge": knowledge_contents(list(build.knowledge), db),
    })
