"""Entry point of `pml`. Heavy libraries (torch, transformers) are imported inside
the commands that need them, so `pml --help` stays instant."""

from pimpmyllama import __version__
from pimpmyllama.cli import adapters, builds, chat, compare, data, kb, merge, models, serve, sessions
from pimpmyllama.cli.app import new_app
from pimpmyllama.cli.lazy import lazy_typer

app = new_app(
    "pimpmyllama: customize an open Llama-family model on your machine, and see what each customization does."
)
app.command()(chat.chat)
app.command()(chat.ask)
app.command()(builds.create)
app.add_typer(models.app, name="models")
app.add_typer(builds.app, name="builds")
app.add_typer(sessions.app, name="sessions")
app.add_typer(kb.app, name="kb")
app.add_typer(lazy_typer("pimpmyllama.cli.train:app", "Fine-tune a model: supervised (chat or completion data) or "
                                                        "continued pre-training (text)."), name="train")
app.add_typer(adapters.app, name="adapters")
app.command()(adapters.export)
app.add_typer(data.data_app, name="data")
app.add_typer(data.eval_app, name="eval")
app.command()(merge.merge)
app.command("extract-lora")(merge.extract_lora)
app.command()(compare.compare)
app.command()(serve.serve)
app.add_typer(lazy_typer("pimpmyllama.cli.service.commands:app", "The background service that keeps models "
                         "loaded for pml ask and pml kb search: start, status, stop."), name="service")


@app.callback()
def _before_any_command() -> None:
    # A write killed mid-way leaves a hidden temporary folder (hundreds of MB for a
    # model): every command sweeps them first, whatever part of the store it uses.
    from pimpmyllama.models.shelf import sweep_store

    sweep_store()


@app.command()
def version():
    """Print the version."""
    print(__version__)


def main() -> None:
    import warnings

    # Deprecation notices from the libraries underneath are for us, not for users.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from pimpmyllama.cli.quick_exit import leave

    try:
        app()  # standalone: it ends with sys.exit
    except SystemExit as done:
        leave(done.code)
    leave(0)
