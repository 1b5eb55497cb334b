"""Prompt templates with `{fields}` (styles, the knowledge wrapper): which fields a
template uses, checked to be plain names, so that filling one never reaches an
attribute or an index of what it is given."""

import string
from collections.abc import Collection


def template_fields(template: str) -> list[str]:
    """The `{fields}` of `template`, in order; ValueError for a malformed template or a
    field that is not a plain name (`{{` and `}}` are literal braces)."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ValueError(f"{exc} (write {{{{ and }}}} for literal braces)") from None
    for field in fields:
        if not field.isidentifier():
            raise ValueError(f"{{{field}}} is not a field name")
    return fields


def check_fields(template: str, allowed: Collection[str], required: Collection[str] = ()) -> str:
    """`template` unchanged when its fields are among `allowed` and include `required`."""
    fields = template_fields(template)
    unknown = [f for f in fields if f not in allowed]
    if unknown:
        raise ValueError(f"unknown field {{{unknown[0]}}} (fields: {', '.join('{' + a + '}' for a in allowed)})")
    missing = [f for f in required if f not in fields]
    if missing:
        raise ValueError(f"the template needs the field {{{missing[0]}}}")
    return template
