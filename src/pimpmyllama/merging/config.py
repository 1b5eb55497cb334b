"""Merge recipes in mergekit's YAML format, so recipes from the ecosystem run unchanged.

    models: [{model: NAME, parameters: {weight: 0.5}}]   # or slices: [{sources: [...]}]
    merge_method: ties
    base_model: NAME
    parameters: {density: [1, 0.5, 0.1], weight: [{filter: self_attn, value: 0.3}, {value: 0.5}]}
    dtype: float32
    tokenizer_source: base

A parameter is a number, a list of numbers (a gradient, interpolated across the
layers of a slice), or a list of {filter, value} conditions (the first whose filter
is a substring of the tensor's name applies). Unlike mergekit, an unknown key is an
error, not a silent default.
"""

from pathlib import Path
from typing import Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pimpmyllama.config_files import parse_yaml_mapping, read_config_text
from pimpmyllama.errors import InvalidInputError

Scalar = Union[float, int, bool, str]


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: Union[Scalar, list[float]]
    filter: str | None = None


Setting = Union[Scalar, list[float], list[Condition]]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputModel(_Strict):
    model: str
    parameters: dict[str, Setting] | None = None


class InputSlice(_Strict):
    model: str
    layer_range: tuple[int, int]
    parameters: dict[str, Setting] | None = None


class OutputSlice(_Strict):
    sources: list[InputSlice] = Field(min_length=1)
    base_model: str | None = None
    parameters: dict[str, Setting] | None = None


class MergeConfig(_Strict):
    models: list[InputModel] | None = None
    slices: list[OutputSlice] | None = None
    merge_method: str
    base_model: str | None = None
    parameters: dict[str, Setting] | None = None
    dtype: str | None = None
    out_dtype: str | None = None
    tokenizer_source: str | None = None
    chat_template: str | None = None

    @model_validator(mode="after")
    def _one_input_kind(self):
        if bool(self.models) == bool(self.slices):
            raise ValueError("give either 'models' or 'slices' (exactly one of them)")
        return self

    def referenced(self) -> list[str]:
        refs = [self.base_model] if self.base_model else []
        for m in self.models or []:
            refs.append(m.model)
        for s in self.slices or []:
            refs += [src.model for src in s.sources] + ([s.base_model] if s.base_model else [])
        return list(dict.fromkeys(refs))


def evaluate(setting: Setting, tensor_name: str, t: float):
    """A parameter's value for one tensor at relative depth t in [0, 1] (mergekit's rules)."""
    if isinstance(setting, (bool, int, float, str)):
        return setting
    if isinstance(setting, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in setting):
        if not setting:
            return None
        scaled = t * (len(setting) - 1)
        i0 = int(scaled)
        i1 = min(len(setting) - 1, i0 + 1)
        frac = scaled - i0
        return (1 - frac) * setting[i0] + frac * setting[i1]
    if isinstance(setting, list):
        for condition in setting:
            if condition.filter in (None, "*") or condition.filter in tensor_name:
                return evaluate(condition.value, tensor_name, t)
        return None
    raise InvalidInputError(f"unexpected parameter value {setting!r}")


def parse_merge_config(text: str, source: str = "recipe") -> MergeConfig:
    for unsupported in ("modules:", "tokenizer:"):
        if any(line.startswith(unsupported) for line in text.splitlines()):
            raise InvalidInputError(f"{source}: '{unsupported[:-1]}' recipes are not supported (use models or "
                                    "slices, and tokenizer_source)")
    return parse_yaml_mapping(text, source, "a merge recipe is a mapping (models or slices, merge_method, ...)",
                              MergeConfig)


def load_merge_config(path: Path) -> MergeConfig:
    return parse_merge_config(read_config_text(path), str(path))
