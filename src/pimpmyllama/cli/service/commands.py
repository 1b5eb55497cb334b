"""pml service start|stop|status (and `run`, what a start launches)."""

from pimpmyllama.cli.app import new_app
from pimpmyllama.cli.terminal import terminal_spec

app = new_app("The background service that keeps models and embedders loaded for `pml ask` and `pml kb search`.")


def _tell(command: str, start: bool) -> bool:
    from pimpmyllama.cli.service.client import ask_service

    return ask_service(command, {}, terminal_spec(), start=start) is not None


@app.command("start")
def start():
    """Start the service now (the first `pml ask` or `pml kb search` does it otherwise)."""
    if not _tell("status", start=True):
        from pimpmyllama.cli.service.place import service_place
        from pimpmyllama.errors import PmlError

        raise PmlError(f"the pml service did not start (its log: {service_place().log})")


@app.command("status")
def status():
    """Say whether the service runs, and what it holds."""
    if not _tell("status", start=False):
        print("no pml service runs for this PML_HOME")


@app.command("stop")
def stop():
    """Stop the service (it also stops by itself after PML_KEEP_ALIVE idle time, default 5m)."""
    print("stopped the pml service" if _tell("stop", start=False) else "no pml service runs for this PML_HOME")


@app.command("run", hidden=True)
def run():
    """Run the service in this process (what `start` launches in the background)."""
    from pimpmyllama.cli.service.place import service_place
    from pimpmyllama.cli.service.server import run_service

    run_service(service_place())
