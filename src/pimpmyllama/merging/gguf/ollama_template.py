"""A model's Jinja chat template as an Ollama (Go text/template) TEMPLATE.

The family is recognised by what the template renders for probe conversations, not by
its source text: two templates that render alike are the same format, whatever their
Jinja. Known families: ChatML and Llama 3. A template that renders a default system
message when the conversation has none (SmolLM2's does) keeps doing so.
"""

from collections.abc import Callable
from dataclasses import dataclass

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.prompting.template import ChatTemplate, Message


@dataclass(frozen=True)
class Family:
    name: str
    turn: Callable[[str, str], str]  # one message as the format writes it
    prompt: str  # what opens the reply
    stops: tuple[str, ...]  # the markers that end a reply


FAMILIES = (
    Family("ChatML", lambda role, content: f"<|im_start|>{role}\n{content}<|im_end|>\n",
           "<|im_start|>assistant\n", ("<|im_end|>",)),
    Family("Llama 3", lambda role, content: f"<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>",
           "<|start_header_id|>assistant<|end_header_id|>\n\n", ("<|eot_id|>",)),
)

_PROBE = [
    {"role": "system", "content": "Probe system prompt."},
    {"role": "user", "content": "First probe question?"},
    {"role": "assistant", "content": "First probe answer."},
    {"role": "user", "content": "Second probe question?"},
    {"role": "assistant", "content": "Second probe answer."},
    {"role": "user", "content": "Third probe question?"},
]


@dataclass(frozen=True)
class OllamaTemplate:
    family: Family
    text: str  # the Go template
    default_system: str | None  # what the template says when no system message is given
    begin: str  # text the Jinja template puts first that llama.cpp adds as the BOS token instead


def _body(family: Family, messages: list[Message]) -> str:
    return "".join(family.turn(m["role"], m["content"]) for m in messages) + family.prompt


def _go_literal(text: str) -> str:
    return text.replace("{{", '{{ "{{" }}')


def go_template(family: Family, default_system: str | None) -> str:
    """The Go template that renders Ollama's `.System` and `.Messages` as `family` does,
    opening with `default_system` when there is no system prompt. Ollama joins every
    system message into `.System` (and, depending on its version, keeps them in or
    drops them from `.Messages`), so the system prompt is written once, first."""
    default = "" if default_system is None else "{{ else }}" + family.turn("system", _go_literal(default_system))
    return ("{{- if .System }}" + family.turn("system", "{{ .System }}") + default + "{{ end }}"
            + '{{- range $i, $m := .Messages }}{{- if ne $m.Role "system" }}'
            + family.turn("{{ $m.Role }}", "{{ $m.Content }}") + "{{ end }}{{ end }}" + family.prompt)


def _match(family: Family, template: ChatTemplate, bos: str) -> OllamaTemplate | None:
    rendered = template.render(_PROBE)
    body = _body(family, _PROBE)
    begin = bos if bos and rendered == bos + body else ""
    if rendered != begin + body:
        return None
    without = template.render(_PROBE[1:])
    rest = without[len(begin):] if without.startswith(begin) else None
    tail = _body(family, _PROBE[1:])
    if rest == tail:
        return OllamaTemplate(family, go_template(family, None), None, begin)
    head, _, foot = family.turn("system", "\0").partition("\0")
    if rest is None or not rest.endswith(tail):
        return None
    block = rest[:-len(tail)]
    if not (block.startswith(head) and block.endswith(foot) and len(block) >= len(head) + len(foot)):
        return None
    default = block[len(head):len(block) - len(foot)]
    return OllamaTemplate(family, go_template(family, default), default, begin)


def to_ollama(template: ChatTemplate, bos: str | None, name: str = "the chat template") -> OllamaTemplate:
    """The Ollama TEMPLATE for `template`, or an error naming the template when it is no
    known family (a wrong TEMPLATE would make Ollama talk to the model in a format it
    was not trained on, without any error)."""
    for family in FAMILIES:
        try:
            found = _match(family, template, bos or "")
        except InvalidInputError:
            found = None
        if found:
            return found
    first = template.source.strip().splitlines()[0][:60] if template.source.strip() else ""
    raise InvalidInputError(f"{name} ({first!r}...) is neither ChatML nor Llama 3: it cannot be translated to an "
                            f"Ollama TEMPLATE (known: {', '.join(f.name for f in FAMILIES)})")
