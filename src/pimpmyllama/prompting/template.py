"""Chat-template rendering, compatible with transformers' `apply_chat_template`.

The same renderer serves inference, token counting in the context packer and the
rendering of training examples, so training and inference cannot disagree on the
format.
"""

import json
import re
from datetime import datetime
from functools import lru_cache

from pimpmyllama.errors import InvalidInputError

Message = dict  # {"role": str, "content": str}

# Private-use characters frame the stand-ins for message contents: a template's own
# text never holds them, so every one found in a rendering marks a content.
_SLOT = re.compile("\ue000(\\d+)\ue001")


def _slot(i: int) -> str:
    return f"\ue000{i}\ue001"


def _raise_exception(message: str):
    from jinja2.exceptions import TemplateError

    raise TemplateError(message)


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # Templates on the Hub expect json.dumps' behaviour (not jinja's HTML-safe tojson).
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


@lru_cache(maxsize=32)
def _compile(source: str):
    from jinja2 import TemplateSyntaxError
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    # Templates come from model repositories: untrusted code, hence the sandbox.
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    try:
        return env.from_string(source)
    except TemplateSyntaxError as exc:
        raise InvalidInputError(f"chat template does not parse: {exc.message} (line {exc.lineno})") from None


class ChatTemplate:
    def __init__(self, source: str, *, bos_token: str | None = None, eos_token: str | None = None):
        self.source = source
        self._template = _compile(source)
        self._special = {"bos_token": bos_token or "", "eos_token": eos_token or ""}

    def render(self, messages: list[Message], add_generation_prompt: bool = True) -> str:
        from jinja2.exceptions import TemplateError

        try:
            return self._template.render(
                messages=messages, add_generation_prompt=add_generation_prompt, **self._special
            )
        except TemplateError as exc:
            raise InvalidInputError(f"the chat template refused these messages: {exc}") from None

    def render_marked(self, messages: list[Message], add_generation_prompt: bool = True
                      ) -> tuple[str, list[tuple[int, int]] | None]:
        """The rendering and the character spans that hold message contents (everything
        else is the template's own text). The spans are found by rendering once more
        with stand-ins for the contents; they are None when the template rewrites the
        contents other than by stripping them, so no span can be trusted."""
        text = self.render(messages, add_generation_prompt)
        contents = [m.get("content") for m in messages]
        stand_ins = [{**m, "content": _slot(i)} if isinstance(m.get("content"), str) else m
                     for i, m in enumerate(messages)]
        skeleton = self.render(stand_ins, add_generation_prompt)
        for shape in (lambda c: c, str.strip):  # templates insert contents as they are, or trimmed
            filled, spans = _fill(skeleton, [shape(c) if isinstance(c, str) else "" for c in contents])
            if filled == text:
                return text, spans
        return text, None


def _fill(skeleton: str, contents: list[str]) -> tuple[str, list[tuple[int, int]]]:
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    at = length = 0
    for match in _SLOT.finditer(skeleton):
        parts.append(skeleton[at:match.start()])
        length += match.start() - at
        content = contents[int(match.group(1))]
        spans.append((length, length + len(content)))
        parts.append(content)
        length += len(content)
        at = match.end()
    parts.append(skeleton[at:])
    return "".join(parts), spans
