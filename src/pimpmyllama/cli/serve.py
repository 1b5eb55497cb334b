"""pml serve [--host H] [--port P] [--api-key KEY | --api-key-file F] [--parallel N] [--max-queue N] [--max-body-mb MB] [--model REF]"""

from pathlib import Path

import typer

from pimpmyllama.cli import device as device_option
from pimpmyllama.errors import InvalidInputError


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (0.0.0.0: every interface)"),
    port: int = typer.Option(8000, "--port", help="port to listen on"),
    api_key: str = typer.Option(None, "--api-key", help="require Authorization: Bearer KEY (all but /health and the web page)"),
    api_key_file: Path = typer.Option(None, "--api-key-file", help="the same, the key read from a file"),
    parallel: int = typer.Option(8, "--parallel", min=1, max=256,
                                 help="requests decoded together per model (continuous batching)"),
    max_queue: int = typer.Option(64, "--max-queue", min=0,
                                  help="requests that may wait per model beyond those; more get 503 + Retry-After"),
    max_body_mb: float = typer.Option(8, "--max-body-mb", min=0.001,
                                      help="largest request body, in MB (document uploads: 20 MB); more get 413"),
    model: list[str] = typer.Option([], "--model", help="a build or model to load at start (repeatable); "
                                    "/health answers 503 until loaded"),
    device: str = device_option.DEVICE,
):
    """Serve builds and models over an OpenAI-compatible HTTP API, with a web page at / (see docs/serving.md)."""
    device_option.use(device)
    from pimpmyllama.serving.auth import read_api_key
    from pimpmyllama.serving.run import serve as run

    if api_key is not None and api_key_file is not None:
        raise InvalidInputError("give --api-key or --api-key-file, not both")
    if api_key is not None and not api_key.strip():
        raise InvalidInputError("--api-key is empty")
    key = read_api_key(api_key_file) if api_key_file is not None else api_key
    run(host, port, key, parallel=parallel, max_queue=max_queue, preload=tuple(model),
        max_body_bytes=int(max_body_mb * 1_000_000))
