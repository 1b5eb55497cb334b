"""Counting a remote model's prompt for the context packer, by the first of:

1. the endpoint's own tokenizer, when it has llama-server's `/apply-template` and
   `/tokenize` (llama-server does; so does `pml serve`): exact, as the remote counts;
2. a local model of the same family named in the build (`tokenizer:`): its tokenizer
   and chat template, exact when the families match;
3. an estimate: a text is ceil(characters / 3) tokens — English runs about 4
   characters a token, so this over-counts, the safety margin — and a message adds
   `MARKER_TOKENS` for its role markers, the prompt `MARKER_TOKENS` for the reply's.

Each format says which it is in `counted_by`, and the packer's report repeats it.
The ids an estimate or an endpoint format gives are only counted, never sent: a
remote engine is sent the messages.
"""

import json
import math

from pimpmyllama.generation.remote_http import RemoteClient
from pimpmyllama.models.refs import resolve_model_folder
from pimpmyllama.prompting.format import ChatFormat
from pimpmyllama.prompting.template import Message
from pimpmyllama.prompting.tokenizer import Tokenizer

CHARS_PER_TOKEN = 3
MARKER_TOKENS = 8


class EstimatedTokens:
    """A stand-in tokenizer: the estimate's counts, no real ids."""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [0] * self.count(text)

    def count(self, text: str) -> int:
        return math.ceil(len(text) / CHARS_PER_TOKEN)

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return ""


class EstimatedFormat:
    counted_by = f"estimate (characters / {CHARS_PER_TOKEN}, {MARKER_TOKENS} per message)"

    def __init__(self):
        self.tokenizer = EstimatedTokens()

    def count(self, messages: list[Message], add_generation_prompt: bool = True) -> int:
        contents = sum(self.tokenizer.count(str(m.get("content") or "")) + MARKER_TOKENS for m in messages)
        return contents + (MARKER_TOKENS if add_generation_prompt else 0)

    def encode(self, messages: list[Message], add_generation_prompt: bool = True) -> list[int]:
        return [0] * self.count(messages, add_generation_prompt)


class EndpointTokens:
    """Text counted by the endpoint's /tokenize (as plain text: no special tokens)."""

    def __init__(self, client: RemoteClient, model: str):
        self._client = client
        self._model = model
        self._seen: dict[tuple[str, bool], list[int]] = {}

    def tokenize(self, text: str, special: bool) -> list[int]:
        key = (text, special)
        if key not in self._seen:
            body = {"model": self._model, "content": text, "add_special": special, "parse_special": special}
            self._seen[key] = list(self._client.post_json("/tokenize", body, root=True)["tokens"])
        return self._seen[key]

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return self.tokenize(text, False)

    def count(self, text: str) -> int:
        return len(self.encode(text))

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return ""


class EndpointFormat:
    """The prompt rendered by the endpoint's /apply-template and counted by its /tokenize,
    as the endpoint itself renders and counts a chat request."""

    counted_by = "the endpoint's /tokenize"

    def __init__(self, client: RemoteClient, model: str):
        self._client = client
        self._model = model
        self.tokenizer = EndpointTokens(client, model)
        self._rendered: dict[str, str] = {}

    def render(self, messages: list[Message], add_generation_prompt: bool = True) -> str:
        key = json.dumps(messages)
        if key not in self._rendered:
            body = {"model": self._model, "messages": messages}
            self._rendered[key] = self._client.post_json("/apply-template", body, root=True)["prompt"]
        return self._rendered[key]

    def encode(self, messages: list[Message], add_generation_prompt: bool = True) -> list[int]:
        return self.tokenizer.tokenize(self.render(messages), True)

    def count(self, messages: list[Message], add_generation_prompt: bool = True) -> int:
        return len(self.encode(messages))


def offers_tokenizer(client: RemoteClient, model: str) -> bool:
    """Whether the endpoint answers llama-server's /tokenize and /apply-template."""
    tokens = client.post_json("/tokenize", {"model": model, "content": "a"}, root=True, optional=True)
    if not isinstance(tokens, dict) or not isinstance(tokens.get("tokens"), list):
        return False
    rendered = client.post_json("/apply-template", {"model": model, "messages": [{"role": "user", "content": "a"}]},
                                root=True, optional=True)
    return isinstance(rendered, dict) and isinstance(rendered.get("prompt"), str)


def counting_format(client: RemoteClient, model: str, local_tokenizer: str | None, template: str | None):
    """The format the packer counts `model`'s prompts with (see the module's order)."""
    if offers_tokenizer(client, model):
        return EndpointFormat(client, model)
    if local_tokenizer:
        name, folder = resolve_model_folder(local_tokenizer)
        fmt = ChatFormat(Tokenizer(folder), template, model_name=name)
        fmt.counted_by = f"the local tokenizer of {name}"
        return fmt
    return EstimatedFormat()
