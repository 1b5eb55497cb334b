"""The one rule for the names a user gives things: models, adapters, builds,
sessions, knowledge bases, training runs.

A name is a single path component by construction — letters, digits, '.', '_'
and '-', starting with a letter or a digit, at most 64 characters — so no name
can hold a separator, '..', a control character or a newline, and no name can
lead outside the folder it is looked up in. '+' is left out: it joins a model
and an adapter in a reference (`model+adapter`).
"""

import re

from pimpmyllama.errors import InvalidInputError

NAME_RULE = "letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def is_valid_name(name: str) -> bool:
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def check_name(name: str, what: str) -> str:
    """`name` unchanged if it follows the rule; else one line naming the problem."""
    if not is_valid_name(name):
        raise InvalidInputError(f"invalid {what} name {name!r}: use {NAME_RULE}")
    return name


def name_from(text: str) -> str:
    """A valid name made from free text (a file or folder name), or 'model'."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")
    return name[:64] or "model"
