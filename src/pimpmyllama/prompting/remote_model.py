"""A model served elsewhere, named in a build's `from:` — an OpenAI-compatible endpoint
(Ollama, llama.cpp's llama-server, vLLM, a provider, another `pml serve`):

    from: {endpoint: http://localhost:11434/v1, model: llama3.2, api_key_env: OLLAMA_KEY}
    from: {remote: ollama, model: llama3.2}      # a remote named in $PML_HOME/remotes.yml

`remotes.yml` maps names to the same keys but `model` (each one a default the build
may override):

    ollama: {endpoint: http://localhost:11434/v1, num_ctx: 8192}
"""

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pimpmyllama.config_files import read_config_text, read_yaml_mapping, validate
from pimpmyllama.errors import InvalidInputError, NotFoundError
from pimpmyllama.paths import home_path

# Shared by a build's `from:` and a named remote.
_CONNECTION_FIELDS = ("endpoint", "api_key_env", "tokenizer", "num_ctx", "timeout", "max_retries")


class _Connection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: str | None = Field(None, description="the API's base URL, up to and including /v1")
    api_key_env: str | None = Field(None, description="environment variable holding the API key "
                                                      "(sent as `Authorization: Bearer`); none: no key")
    tokenizer: str | None = Field(None, description="a local model of the same family whose tokenizer and "
                                                    "chat template count the prompt when the endpoint has no "
                                                    "/tokenize")
    num_ctx: int | None = Field(None, ge=32, description="the remote's context window; none: what the "
                                                         "endpoint tells (llama-server's /props), else 2048")
    timeout: float | None = Field(None, gt=0, description="seconds to wait for a connection or for the next "
                                                          "piece of a reply (default 60)")
    max_retries: int | None = Field(None, ge=0, le=10, description="retries of a request answered 429 or 503 "
                                                                   "(default 3)")

    @field_validator("endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("an endpoint is an http:// or https:// URL")
        return value.rstrip("/") if value else value


class RemoteModel(_Connection):
    """A model on an OpenAI-compatible endpoint: given by URL, or by a remote's name."""

    remote: str | None = Field(None, description="a remote named in $PML_HOME/remotes.yml")
    model: str = Field(description="the model's name on the endpoint")

    @model_validator(mode="after")
    def _endpoint_or_remote(self):
        if (self.endpoint is None) == (self.remote is None):
            raise ValueError("a remote model needs either endpoint or remote (the name of one in remotes.yml)")
        return self

    @property
    def label(self) -> str:
        """How the model is named in reports and session rows."""
        return f"{self.remote}/{self.model}" if self.remote else f"{self.model}@{self.endpoint}"

    def resolved(self) -> "RemoteModel":
        """The model with its named remote's settings filled in (the build's own win)."""
        if self.remote is None:
            return self
        remotes = load_remotes()
        if self.remote not in remotes:
            raise NotFoundError(f"unknown remote {self.remote!r} (remotes.yml names: "
                                f"{', '.join(remotes) or 'none'})")
        named = remotes[self.remote]
        given = {k: getattr(self, k) for k in _CONNECTION_FIELDS if k in self.model_fields_set}
        return self.model_copy(update={**{k: getattr(named, k) for k in _CONNECTION_FIELDS}, **given})


class _NamedRemote(_Connection):
    @model_validator(mode="after")
    def _has_endpoint(self):
        if self.endpoint is None:
            raise ValueError("a named remote needs an endpoint")
        return self


def remotes_path() -> Path:
    return home_path() / "remotes.yml"


def load_remotes() -> dict[str, _Connection]:
    """The remotes named in $PML_HOME/remotes.yml (none when there is no such file)."""
    path = remotes_path()
    if not path.exists():
        return {}
    data = read_yaml_mapping(read_config_text(path), str(path), "remotes.yml maps names to {endpoint: ...}",
                             empty_ok=True)
    remotes = {}
    for name, settings in data.items():
        if not isinstance(settings, dict):
            raise InvalidInputError(f"{path}: remote {name!r} is a mapping ({{endpoint: ...}})")
        remotes[str(name)] = validate(_NamedRemote, settings, f"{path}: remote {name!r}")
    return remotes
