"""What made a model or an adapter: one schema, written beside every store entry
(`pml-model.json`, `pml-adapter.json`) by the store's one writer.

Entries written before this schema existed are read through `_from_legacy`, so a
store keeps working across the upgrade.
"""

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pimpmyllama.config_files import describe_validation_error
from pimpmyllama.errors import InvalidInputError

MODEL_MANIFEST = "pml-model.json"  # in a model's folder
MADE_BY = ("import", "train", "merge", "merge-lora", "extract-lora", "export", "unknown")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Parent(_Strict):
    """A model (and maybe an adapter) that an entry was made from."""

    ref: str = Field(description="the reference as the user gave it")
    path: str | None = Field(None, description="its folder when the entry was made")
    fingerprint: str | None = Field(None, description="identifies the parent's weights (models.adapters.base_fingerprint)")
    adapter: str | None = Field(None, description="the adapter's folder, for a model+adapter parent")
    adapter_sha256: str | None = Field(None, description="the adapter's weights' hash, for a model+adapter parent")


class Manifest(_Strict):
    version: int = 1
    kind: Literal["model", "adapter"]
    made_by: Literal[MADE_BY] = Field(description="which producer wrote the entry")
    source: str = Field(description="one line for listings: where the entry came from")
    created_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    parents: list[Parent] = Field(default_factory=list, description="base models and merge inputs, in order")
    format: str | None = Field(None, description="what an import read: hf or gguf")
    recipe: dict | None = Field(None, description="a merge's method, seed and recipe file name")
    training: dict | None = Field(None, description="a training run: method, kind, data, data hash, config, metrics")
    extraction: dict | None = Field(None, description="an extracted adapter: rank, relative error")

    @property
    def base(self) -> Parent | None:
        return self.parents[0] if self.parents else None

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, exclude_none=True)


def read_manifest(path: Path, kind: Literal["model", "adapter"]) -> Manifest | None:
    """The manifest at `path`, None if there is none; a corrupt one is one line."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"{path} is not a JSON object")
    if "version" not in data:
        data = _from_legacy(data, kind)
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError(describe_validation_error(str(path), exc)) from None


def _from_legacy(data: dict, kind: str) -> dict:
    """The four layouts written before the schema: import, training, merge, export."""
    out = {"version": 1, "kind": kind, "source": str(data.get("source") or data.get("base") or "?"),
           "made_by": "unknown"}
    if data.get("imported_at") or data.get("created_at"):
        out["created_at"] = data.get("created_at") or data["imported_at"]
    if data.get("format") in ("hf", "gguf") and "base" not in data:
        out.update(made_by="import", format=data["format"])
    if "inputs" in data:
        out.update(made_by="merge", recipe={"method": data.get("method"), "seed": data.get("seed")},
                   parents=[{k: v for k, v in i.items() if k in Parent.model_fields} for i in data["inputs"]])
    elif "base" in data:
        out["parents"] = [{"ref": str(data["base"]), "path": data.get("base_path"),
                           "fingerprint": data.get("base_fingerprint")}]
        if "config" in data:
            out.update(made_by="train", training={k: data.get(k) for k in
                                                  ("method", "kind", "data", "data_hash", "config", "metrics")})
        elif "exported_from" in data:
            out["made_by"] = "export"
    return out
