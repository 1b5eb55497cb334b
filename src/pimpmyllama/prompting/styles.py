"""Styles: prompt techniques as short instructions added to the system prompt.

A build lists them (`styles: [brief, {expert: {field: law}}]`) and `pml chat` /
`pml ask` add more with `--style NAME` or `--style NAME:KEY=VALUE`. A style is an
instruction template whose `{fields}` are its parameters; every field must be
given, and no other. The built-in styles are `BUILTIN`; a user's own come from
`$PML_HOME/styles.yml` (name: template), which may not reuse a built-in's name.

Order: the instructions follow the built-in order of `BUILTIN`, then the order of
the user's file — never the order they are listed in, so the same set of styles
always makes the same prompt (and `[brief, expert]` is `[expert, brief]`).
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pimpmyllama.config_files import read_config_text, read_yaml_mapping
from pimpmyllama.errors import InvalidInputError
from pimpmyllama.paths import home_path
from pimpmyllama.prompting.fields import template_fields
from pimpmyllama.text import check_text

# Who answers, for whom, how, how long: the order the instructions are sent in.
BUILTIN: dict[str, str] = {
    "expert": "Answer as an expert in {field} would, precisely and in the terms of the field.",
    "eli5": "Explain simply, as you would to a five-year-old.",
    "step_by_step": "Think step by step: give the steps first, then the answer.",
    "brief": "Answer briefly, in one or two sentences.",
}

USER_STYLES_FILE = "styles.yml"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")

# How a build writes a style: a name, or {name: {parameter: value}}.
StyleSpec = str | dict[str, dict[str, str]]


@dataclass(frozen=True)
class Style:
    name: str
    instruction: str


def _fields(template: str, where: str) -> list[str]:
    try:
        return template_fields(template)
    except ValueError as exc:
        raise InvalidInputError(f"{where}: {exc}") from None


def user_styles_path() -> Path:
    return home_path() / USER_STYLES_FILE


def load_user_styles(path: Path | None = None) -> dict[str, str]:
    """The user's styles (name -> template), in file order; {} when there is no file."""
    path = path or user_styles_path()
    if not path.is_file():
        return {}
    data = read_yaml_mapping(read_config_text(path), str(path), "styles are a mapping of name: instruction",
                             empty_ok=True)
    styles = {}
    for name, template in data.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise InvalidInputError(f"{path}: invalid style name {name!r}: use letters, digits, '_' and '-', "
                                    "starting with a letter")
        if name in BUILTIN:
            raise InvalidInputError(f"{path}: {name!r} is a built-in style; give yours another name")
        if not isinstance(template, str) or not template.strip():
            raise InvalidInputError(f"{path}: style {name!r} must be an instruction (a non-empty string)")
        _fields(template, f"{path}: style {name!r}")
        styles[name] = template.strip()
    return styles


def style_template(name: str, known: dict[str, str]) -> str:
    """The template of the style `name`; an unknown name fails with the known ones."""
    try:
        return known[name]
    except KeyError:
        raise InvalidInputError(f"unknown style {name!r} (known: {', '.join(sorted(known))})") from None


def split_spec(spec: StyleSpec) -> tuple[str, dict[str, str]]:
    if isinstance(spec, str):
        return spec, {}
    (name, params), = spec.items()
    return name, params


def parse_style_option(text: str) -> StyleSpec:
    """`NAME` or `NAME:KEY=VALUE[,KEY=VALUE...]`, as given to `--style`."""
    check_text(text, "--style")
    name, colon, rest = text.partition(":")
    if not colon:
        return name.strip()
    params = {}
    for pair in rest.split(","):
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise InvalidInputError(f"--style {text!r}: write NAME or NAME:KEY=VALUE[,KEY=VALUE]")
        params[key.strip()] = value.strip()
    return {name.strip(): params}


def merge_styles(specs: Sequence[StyleSpec], extra: Sequence[StyleSpec]) -> list[StyleSpec]:
    """`specs` with `extra` added; an extra style replaces one of the same name."""
    replaced = {split_spec(s)[0] for s in extra}
    return [s for s in specs if split_spec(s)[0] not in replaced] + list(extra)


def resolve_styles(specs: Sequence[StyleSpec], user: dict[str, str] | None = None) -> list[Style]:
    """The instructions of `specs`, in the fixed order (see the module's docstring).
    An unknown style, a style given twice, a missing or unknown parameter: one line."""
    if not specs:
        return []
    known = {**BUILTIN, **(load_user_styles() if user is None else user)}
    order = list(known)
    chosen: dict[str, Style] = {}
    for spec in specs:
        name, params = split_spec(spec)
        template = style_template(name, known)
        if name in chosen:
            raise InvalidInputError(f"style {name!r} is given twice")
        fields = _fields(template, f"style {name!r}")
        missing = [f for f in fields if f not in params]
        if missing:
            raise InvalidInputError(f"style {name!r} needs {', '.join(missing)}: write {{{name}: {{{missing[0]}: "
                                    f"...}}}} in a build, or --style {name}:{missing[0]}=...")
        unknown = [p for p in params if p not in fields]
        if unknown:
            takes = ", ".join(dict.fromkeys(fields)) or "none"
            raise InvalidInputError(f"style {name!r} has no parameter {unknown[0]!r} (it takes: {takes})")
        chosen[name] = Style(name, template.format(**params))
    return [chosen[name] for name in order if name in chosen]
