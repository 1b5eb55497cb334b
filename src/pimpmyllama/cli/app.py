"""The typer application and its error handling.

A `PmlError` anywhere below a command becomes one line on stderr and exit code 2,
with no traceback; usage errors are typer's own (also exit 2). Every text argument
and option is checked to be real text (valid UTF-8) before the command runs.
"""

import functools
import sys

import typer

from pimpmyllama.errors import PmlError
from pimpmyllama.text import check_text


def _check_text_parameters(values: dict) -> None:
    """Argv bytes that are not UTF-8 reach Python as lone surrogates, which no database,
    tokenizer or terminal takes: refuse them by the parameter's name, before any work."""
    import click

    context = click.get_current_context(silent=True)
    params = {p.name: p for p in context.command.params} if context else {}
    for name, value in values.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, str):
                param = params.get(name)
                if isinstance(param, click.Option):
                    label = f"the option {param.opts[0]}"
                else:
                    label = f"the argument {(param.human_readable_name if param else name).upper()}"
                check_text(item, label)


def friendly_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            _check_text_parameters(kwargs)
            return fn(*args, **kwargs)
        except PmlError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from None

    return wrapper


class PmlTyper(typer.Typer):
    def command(self, *args, **kwargs):
        register = super().command(*args, **kwargs)

        def decorator(fn):
            register(friendly_errors(fn))
            return fn

        return decorator


def new_app(help_text: str) -> typer.Typer:
    return PmlTyper(
        help=help_text,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )
