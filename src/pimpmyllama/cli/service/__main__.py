"""`python -m pimpmyllama.cli.service`: the service process a one-shot command starts
(what `pml service run` runs, without importing the rest of the CLI first)."""

from pimpmyllama.cli.service.place import service_place
from pimpmyllama.cli.service.server import run_service

run_service(service_place())
