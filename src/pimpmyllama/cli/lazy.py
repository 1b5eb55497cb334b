"""Command groups whose module is imported only when one of their commands runs
(or their own --help is asked for), so `pml --help` does not pay for it.

`pml train` needs pydantic and TrainConfig to build its options (about 0.1 s);
nothing else at start-up does.
"""

import importlib

import typer
from typer.core import TyperGroup


def lazy_typer(target: str, help_text: str) -> typer.Typer:
    """A typer app standing for `target` ("package.module:app"), loaded on first use."""

    class LazyGroup(TyperGroup):
        _loaded = None

        def _group(self):
            if LazyGroup._loaded is None:
                module, attribute = target.split(":")
                LazyGroup._loaded = typer.main.get_command(getattr(importlib.import_module(module), attribute))
            return LazyGroup._loaded

        def list_commands(self, ctx):
            return self._group().list_commands(ctx)

        def get_command(self, ctx, name):
            return self._group().get_command(ctx, name)

    return typer.Typer(cls=LazyGroup, help=help_text, no_args_is_help=True, add_completion=False,
                       pretty_exceptions_enable=False, rich_markup_mode=None)
