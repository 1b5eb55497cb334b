"""The `pml` extension field of a chat request: what OpenAI's API has no field for.

    client.chat.completions.create(..., extra_body={"pml": {"session": "mairie", "knowledge": ["town"]}})

`knowledge` and `styles` replace the build's lists for this request (send the build's
names too to add to them; `[]` for none); `num_ctx`, `top_k` and `repeat_penalty`
override the build's parameters. `session` is handled by `serving.sessions`.
Unknown keys are refused, all of them named."""

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from pimpmyllama.knowledge.store import KnowledgeStore
from pimpmyllama.prompting.build import Build, Parameters
from pimpmyllama.prompting.styles import StyleSpec, resolve_styles
from pimpmyllama.serving.errors import naming
from pimpmyllama.storage.db import open_database


class PmlExtras(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session: str | None = Field(None, min_length=1, description="a session: its history and memory are used, "
                                                                "the turn is stored in it (created if new)")
    knowledge: list[str] | None = Field(None, description="knowledge bases searched, instead of the build's")
    styles: list[StyleSpec] | None = Field(None, description="prompt styles, instead of the build's")
    num_ctx: int | None = Field(None, ge=32, description="context window, in tokens")
    top_k: int | None = Field(None, ge=0, description="sample among the k likeliest tokens; 0 disables")
    repeat_penalty: float | None = Field(None, gt=0, description="penalty on tokens the reply already used")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, value):
        if isinstance(value, dict):
            unknown = [key for key in value if key not in cls.model_fields]
            if unknown:
                raise PydanticCustomError(
                    "unknown_keys", "unsupported keys {unknown} (known: {known})",
                    {"unknown": ", ".join(map(repr, unknown)), "known": ", ".join(cls.model_fields)})
        return value

    def parameters(self) -> dict:
        given = {"num_ctx": self.num_ctx, "top_k": self.top_k, "repeat_penalty": self.repeat_penalty}
        return {name: value for name, value in given.items() if value is not None}


def with_extras(build: Build, extras: PmlExtras | None) -> Build:
    """`build` with the request's extras applied, each checked (an unknown knowledge base
    or style is an error naming `pml.knowledge` or `pml.styles`) before anything runs."""
    if extras is None:
        return build
    update = {}
    if extras.parameters():
        update["parameters"] = Parameters.model_validate(
            {**build.parameters.model_dump(exclude_unset=True), **extras.parameters()})
    if extras.knowledge is not None:
        store = KnowledgeStore(open_database())
        with naming("pml.knowledge"):
            for name in extras.knowledge:
                store.get(name)
        update["knowledge"] = list(dict.fromkeys(extras.knowledge))
    if extras.styles is not None:
        with naming("pml.styles"):
            resolve_styles(extras.styles)
        update["styles"] = list(extras.styles)
    return build.model_copy(update=update)

