"""The typer application and its error handling.

A `PmlError` anywhere below a command becomes one line on stderr and exit code 2,
with no traceback; usage errors are typer's own (also exit 2).
"""

import functools
import sys

import typer

from pimpmyllama.errors import PmlError


def friendly_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
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
