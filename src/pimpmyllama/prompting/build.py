"""Builds: our Modelfile. A YAML file that says which model, which system prompt,
few-shot messages, pinned facts and parameters make up an assistant."""

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pimpmyllama.config_files import parse_yaml_mapping, read_config_text
from pimpmyllama.errors import InvalidInputError
from pimpmyllama.models.defaults import DEFAULT_MODEL
from pimpmyllama.prompting.passages import (DEFAULT_PASSAGE_TEMPLATE, DEFAULT_TEMPLATE, PassagePrompt,
                                            check_passage_template, check_template)
from pimpmyllama.prompting.remote_model import RemoteModel
from pimpmyllama.prompting.styles import StyleSpec


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


ROPE_SCALING_TYPES = ("linear", "dynamic", "yarn")  # generation/rope.py implements each


class RopeScaling(_Strict):
    """Stretching the model's rotary position embeddings past the length it was trained
    for; names as transformers' `rope_scaling`. num_ctx may then reach factor × that
    length (docs/builds-and-context.md says what each type costs)."""

    type: Literal["linear", "dynamic", "yarn"] = Field(description="linear: positions divided by the factor; "
                                                       "dynamic: NTK base for the build's num_ctx; yarn: YaRN")
    factor: float = Field(ge=1, description="how many times the trained length num_ctx may reach")
    original_max_position_embeddings: int | None = Field(
        None, ge=1, description="the length the model was trained for (default: its config's max_position_embeddings)")
    beta_fast: float | None = Field(None, gt=0, description="yarn: frequencies turning more often than this over "
                                                            "the trained length are kept (default 32)")
    beta_slow: float | None = Field(None, gt=0, description="yarn: frequencies turning less often than this are "
                                                            "divided by the factor (default 1)")
    attention_factor: float | None = Field(None, gt=0, description="yarn: multiplies queries and keys "
                                                                   "(default 0.1 ln(factor) + 1)")

    @model_validator(mode="after")
    def _yarn_only(self):
        for name in ("beta_fast", "beta_slow", "attention_factor"):
            if getattr(self, name) is not None and self.type != "yarn":
                raise ValueError(f"{name} applies to rope_scaling type yarn only")
        return self

    def context_length(self, trained_length: int) -> int:
        """The longest num_ctx this scaling allows a model trained for `trained_length`."""
        return int(self.factor * (self.original_max_position_embeddings or trained_length))


class Parameters(_Strict):
    """Generation parameters; names and defaults follow Ollama's Modelfile."""

    num_ctx: int = Field(2048, ge=32, description="context window, in tokens: prompt and reply together")
    max_new_tokens: int = Field(512, ge=1, description="longest reply, in tokens (Ollama's num_predict)")
    temperature: float = Field(0.8, ge=0, description="0 decodes greedily")
    top_p: float = Field(0.9, gt=0, le=1, description="nucleus sampling threshold")
    top_k: int = Field(40, ge=0, description="sample among the k likeliest tokens; 0 disables")
    repeat_penalty: float = Field(1.1, gt=0, description="penalty on tokens the reply already used; 1 disables")
    repeat_last_n: int = Field(64, ge=-1, description="how many recent reply tokens the penalty looks at; -1 all")
    presence_penalty: float = Field(0.0, ge=-2, le=2, description="subtracted from the logit of every token "
                                                                  "the reply already used (OpenAI's)")
    frequency_penalty: float = Field(0.0, ge=-2, le=2, description="subtracted from a token's logit once per "
                                                                   "time the reply used it (OpenAI's)")
    seed: int | None = Field(None, description="random seed for reproducible sampling")
    stop: list[str] = Field(default_factory=list, description="strings that end the reply")
    rope_scaling: RopeScaling | None = Field(None, description="stretch the context past the trained length: "
                                             "{type: linear | dynamic | yarn, factor: F}")

    @field_validator("stop", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [value] if isinstance(value, str) else value

    def for_model(self, context_length: int, sampling_defaults: dict | None = None) -> "Parameters":
        """Fit the defaults to a model: num_ctx, when not given, is at most the model's
        context length, and the reply's reserve at most a quarter of it; sampling
        parameters not given come from the model's own recommendations, if any."""
        given = self.model_fields_set
        update = {k: v for k, v in (sampling_defaults or {}).items() if k not in given}
        if "num_ctx" not in given:
            update["num_ctx"] = min(self.num_ctx, context_length)
        num_ctx = update.get("num_ctx", self.num_ctx)
        if "max_new_tokens" not in given:
            update["max_new_tokens"] = min(self.max_new_tokens, num_ctx // 4)
        return self.model_validate({**self.model_dump(), **update}) if update else self


class Retrieval(_Strict):
    """How the build's knowledge bases are searched for each message."""

    top_k: int = Field(4, ge=1, le=50, description="passages retrieved per message")
    mode: Literal["hybrid", "dense", "keyword"] = Field("hybrid", description="dense + keyword fused, or one of them")
    mmr: bool = Field(False, description="diversify passages (maximal marginal relevance)")
    share: float = Field(0.5, ge=0, le=1, description="share of the free context the passages may take")
    min_similarity: float | None = Field(
        None, ge=-1, le=1, description="a passage whose cosine similarity with the message is below this is not "
                                       "offered (needs mode dense or hybrid); none: every retrieved passage is")
    margin: float | None = Field(
        0.1, ge=0, le=2, description="a passage less similar to the message than the most similar one by more "
                                      "than this is not offered (needs mode dense or hybrid); none: no margin")
    template: str = Field(DEFAULT_TEMPLATE, description="the prompt around the passages and the message: fields "
                                                        "{passages}, {question}, {cite} (see prompting/passages.py)")
    passage_template: str = Field(DEFAULT_PASSAGE_TEMPLATE, description="how each passage is written: fields "
                                                                        "{label}, {text}")
    cite: bool = Field(True, description="ask the model to cite the passages by number ({cite} in the template)")
    order: Literal["best_first", "best_last"] = Field("best_first", description="where the best passage goes: "
                                                                                "first, or last (next to the question)")

    @field_validator("template")
    @classmethod
    def _template_fields(cls, value: str) -> str:
        return check_template(value)

    @field_validator("passage_template")
    @classmethod
    def _passage_fields(cls, value: str) -> str:
        return check_passage_template(value)

    @model_validator(mode="after")
    def _similarity_needs_vectors(self):
        for name in ("min_similarity", "margin"):  # the default margin is simply unused by keyword search
            if name in self.model_fields_set and getattr(self, name) is not None and self.mode == "keyword":
                raise ValueError(f"{name} needs mode dense or hybrid (keyword search has no similarity)")
        return self

    def passage_prompt(self) -> PassagePrompt:
        return PassagePrompt(self.template, self.passage_template, self.cite, self.order == "best_last")


class LongTermMemory(_Strict):
    """Turns that leave the rolling window are embedded and recalled when relevant."""

    enabled: bool = Field(True, description="remember turns that left the window")
    recall_k: int = Field(3, ge=0, le=20, description="memories recalled per message")
    share: float = Field(0.2, ge=0, le=1, description="share of the free context recalled memories may take")
    replace_history: bool = Field(True, description="the most relevant memory, when longer than its share, is kept "
                                                    "if the window holds it, in place of the oldest history turns")
    embedder: str = Field("all-minilm-l6-v2", description="embedder for memories")


class FewShotMessage(_Strict):
    role: Literal["system", "user", "assistant"]
    content: str


class Build(_Strict):
    from_: str | RemoteModel = Field(DEFAULT_MODEL, alias="from", description="store model name or model folder, "
                                     "or a model on an OpenAI-compatible endpoint (see prompting/remote_model.py)")
    system: str | None = Field(None, description="system prompt, sent with every turn")
    messages: list[FewShotMessage] = Field(default_factory=list, description="few-shot messages, always sent")
    pinned: list[str] = Field(default_factory=list, description="facts always kept in the context")
    styles: list[StyleSpec] = Field(default_factory=list, description="prompt styles added to the system prompt: "
                                    "a name, or {name: {parameter: value}} (see prompting/styles.py)")
    parameters: Parameters = Field(default_factory=Parameters)
    template: str | None = Field(None, description="chat template (Jinja) for models that have none")
    adapter: str | None = Field(None, description="a LoRA adapter (store name or folder) applied to the model")
    precision: Literal["fp32", "bf16", "int8", "int4"] | None = Field(
        None, description="weights and activations the engine runs at (default: the measured best)")
    knowledge: list[str] = Field(default_factory=list, description="knowledge bases searched for every message")
    retrieval: Retrieval = Field(default_factory=Retrieval)
    memory: LongTermMemory = Field(default_factory=LongTermMemory)

    @field_validator("styles", mode="before")
    @classmethod
    def _style_specs(cls, value):
        if not isinstance(value, list):
            return value
        return [_style_spec(item) for item in value]

    @property
    def is_remote(self) -> bool:
        return isinstance(self.from_, RemoteModel)

    @property
    def model_label(self) -> str:
        """The model's name as shown: a store name, a folder, or MODEL@ENDPOINT."""
        return self.from_.label if self.is_remote else self.from_

    def local_model(self, purpose: str) -> str:
        """The local model's reference; a remote model cannot serve `purpose`."""
        if self.is_remote:
            raise InvalidInputError(f"{purpose} needs a local model; {self.from_.label} runs on a remote endpoint")
        return self.from_

    def few_shot(self) -> list[dict]:
        return [m.model_dump() for m in self.messages]

    def to_yaml(self) -> str:
        data = {"from": self.from_, **self.model_dump(by_alias=True, exclude_defaults=True)}
        return yaml.dump(data, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True)


def _style_spec(item):
    """A style as written in a build, with its parameter values as text."""
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and len(item) == 1:
        (name, params), = item.items()
        if params is None:
            return name
        if isinstance(name, str) and isinstance(params, dict) and all(
                isinstance(k, str) and isinstance(v, str | int | float) and not isinstance(v, bool)
                for k, v in params.items()):
            return {name: {k: str(v) for k, v in params.items()}}
    raise ValueError("a style is a name, or {name: {parameter: value}}")


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings (system prompts, templates) as readable `|` blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _represent_str)


def parse_build(text: str, source: str = "build") -> Build:
    return parse_yaml_mapping(text, source, "a build is a mapping of keys (from, system, parameters, ...)", Build,
                              empty_ok=True)


def load_build_file(path: Path) -> Build:
    build = parse_build(read_config_text(path), str(path))
    if isinstance(build.from_, RemoteModel):
        return build
    # A relative model path in a build file means relative to that file.
    candidate = (path.parent / build.from_).resolve()
    if not Path(build.from_).is_absolute() and ("/" in build.from_ or build.from_.startswith(".")) and candidate.exists():
        build = build.model_copy(update={"from_": str(candidate)})
    return build
