"""Running the app with uvicorn: what `pml serve` does once its options are parsed."""

import socket

from pimpmyllama.errors import InvalidInputError


def check_listen(host: str, port: int) -> None:
    """Fail with one line now, rather than with uvicorn's log lines once it starts,
    when the address cannot be listened on (a port in use, an unknown host)."""
    if not 1 <= port <= 65535:
        raise InvalidInputError(f"--port {port}: a port is between 1 and 65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InvalidInputError(f"--host {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind(address)
        except OSError as exc:
            raise InvalidInputError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def serve(host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None) -> None:
    """Serve the API until interrupted."""
    import uvicorn

    from pimpmyllama.serving.app import create_app

    check_listen(host, port)
    uvicorn.run(create_app(api_key=api_key), host=host, port=port, log_level="info")
