"""A one-shot command (`pml ask`, `pml kb search`) answered by the background service
when it can be, else in this process: the same function prints the same output on
either path (cli/service/)."""

from collections.abc import Callable

import typer

from pimpmyllama.cli.terminal import Terminal, local_terminal, terminal_spec

NO_SERVICE = typer.Option(False, "--no-service", help="answer in this process, without the background service "
                                                      "(also PML_NO_SERVICE=1)")


def one_shot(command: str, request: dict, no_service: bool, run_here: Callable[[dict, Terminal], None]) -> None:
    """`command` with `request` through the service (started if needed); in-process
    with `run_here` when the service is turned off or cannot answer."""
    from pimpmyllama.cli.service.place import service_disabled

    if not no_service and not service_disabled():
        from pimpmyllama.cli.service.client import ask_service

        code = ask_service(command, request, terminal_spec())
        if code is not None:
            if code:
                raise typer.Exit(code)
            return
    run_here(request, local_terminal())
