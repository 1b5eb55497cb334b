"""The `pml` entry point. A one-shot command that will be answered by the background
service (`pml ask`, `pml kb search`) starts that service first, if none runs, and only
then imports the CLI: the service's start overlaps the command's own (cli/service/)."""

import sys


def goes_to_the_service(args: list[str]) -> bool:
    """Whether these arguments name a command the service answers, to be run (not its help)."""
    from pimpmyllama.cli.service.place import service_disabled

    wanted = args[:1] == ["ask"] or args[:2] == ["kb", "search"]
    return wanted and not {"--help", "-h", "--no-service"} & set(args) and not service_disabled()


def main() -> None:
    if goes_to_the_service(sys.argv[1:]):
        from pimpmyllama.cli.service.client import start_early
        from pimpmyllama.errors import PmlError

        try:
            start_early()
        except (OSError, PmlError):  # the command itself will say what is wrong, or answer in-process
            pass
    from pimpmyllama.cli.main import main as run_cli

    run_cli()
