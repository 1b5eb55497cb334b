"""Command-line options derived from a pydantic config model's fields.

A field is declared once, in its model (type, default, description); `config_options`
turns the chosen fields into typer options with that help text and default, so a
command's `--help` and a YAML config file can never drift apart. Every option
defaults to None — "not given" — so a value from `--config` is overridden only by
an option the user typed; the help shows the field's own default.
"""

import functools
import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import typer
from pydantic import BaseModel


@dataclass(frozen=True)
class FieldOption:
    """How one config field appears on the command line.

    `flags`: typer's parameter declarations ("--lr", or "--full/--lora" for a bool
    pair); empty means "--field-name". `to_config` turns the parsed value into the
    field's value; `cli_type` is the type typer parses (default: the field's own,
    without None); `help` replaces the field's description."""

    field: str
    flags: tuple[str, ...] = ()
    to_config: Callable[[Any], Any] | None = None
    cli_type: Any = None
    help: str | None = None


def _plain_type(annotation):
    """The field's type without `| None`: what the command line parses."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _help(model: type[BaseModel], option: FieldOption, cli_type) -> str:
    if option.help:
        return option.help
    info = model.model_fields[option.field]
    text = info.description or option.field.replace("_", " ")
    if typing.get_origin(cli_type) is Literal:
        text += f" ({', '.join(map(str, typing.get_args(cli_type)))})"
    default = info.get_default(call_default_factory=True)
    if default is None or default in ([], ""):
        return text
    return f"{text} [default: {default}]"


def _parameter(model: type[BaseModel], option: FieldOption) -> inspect.Parameter:
    info = model.model_fields[option.field]
    cli_type = option.cli_type or _plain_type(info.annotation)
    name = option.field.rstrip("_").replace("_", "-")
    flags = option.flags or ((f"--{name}/--no-{name}",) if cli_type is bool else (f"--{name}",))
    help_text = _help(model, option, cli_type)
    if typing.get_origin(cli_type) is Literal:
        cli_type = str  # pydantic checks the value and names the allowed ones in one line
    return inspect.Parameter(
        option.field, inspect.Parameter.KEYWORD_ONLY,
        default=typer.Option(None, *flags, help=help_text, show_default=False),
        annotation=cli_type | None,
    )


def config_options(model: type[BaseModel], options: list[FieldOption]):
    """Decorate a command so it also takes one option per entry of `options`; the
    command receives them as `overrides`: {field alias: value} of those given."""

    def decorate(command):
        signature = inspect.signature(command)
        own = [p for name, p in signature.parameters.items() if name != "overrides"]
        added = [_parameter(model, option) for option in options]

        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            overrides = {}
            for option in options:
                value = kwargs.pop(option.field)
                if value is not None:
                    key = model.model_fields[option.field].alias or option.field
                    overrides[key] = option.to_config(value) if option.to_config else value
            return command(*args, overrides=overrides, **kwargs)

        wrapper.__signature__ = signature.replace(parameters=own + added)
        wrapper.__annotations__ = {p.name: p.annotation for p in own + added}
        return wrapper

    return decorate
