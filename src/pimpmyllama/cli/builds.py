"""pml create, pml builds list|show|rm"""

from pathlib import Path

import typer
from rich.table import Table

from pimpmyllama.cli.app import new_app
from pimpmyllama.cli.console import cells, escape, out

app = new_app("Manage builds (model + system prompt + facts + parameters).")


def create(
    name: str = typer.Argument(..., help="name of the new build"),
    file: Path = typer.Option(..., "--file", "-f", help="the build's YAML file"),
    force: bool = typer.Option(False, "--force", help="replace a build of the same name"),
):
    """Create a build from a YAML file, checked against its model."""
    from pimpmyllama.api import create_build
    from pimpmyllama.cli.console import progress_reporter

    with progress_reporter("Checking the model") as report:
        build = create_build(name, file, force=force, progress=report)
    out.print(f"created build [bold]{escape(name)}[/] (model {escape(build.model_label)})")


@app.command("list")
def list_():
    """List builds."""
    from pimpmyllama.prompting.builds import BuildStore

    store = BuildStore()
    table = Table("NAME", "MODEL", "SYSTEM", box=None)
    for name in store.names():
        build = store.get(name)
        system = (build.system or "").replace("\n", " ")
        table.add_row(*cells(name, build.model_label, system[:60] + ("…" if len(system) > 60 else "")))
    out.print(table)


@app.command("show")
def show(name: str = typer.Argument(..., help="build name")):
    """Print a build's YAML."""
    from pimpmyllama.prompting.builds import BuildStore

    from rich.syntax import Syntax  # pygments: only for this command

    out.print(Syntax(BuildStore().text(name), "yaml", theme="ansi_dark", background_color="default"))


@app.command("rm")
def rm(name: str = typer.Argument(..., help="build name")):
    """Remove a build."""
    from pimpmyllama.prompting.builds import BuildStore

    BuildStore().remove(name)
    out.print(f"removed {escape(name)}")
