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


def serve(host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None, *, parallel: int = 8,
          max_queue: int = 64, preload: tuple[str, ...] = (), max_body_bytes: int = 8_000_000) -> None:
    """Serve the API until interrupted; the options as `create_app`'s."""
    import uvicorn

    from pimpmyllama.serving.app import create_app

    check_listen(host, port)
    if preload:
        from pimpmyllama.errors import NotFoundError
        from pimpmyllama.serving.chat import resolve_served
        from pimpmyllama.serving.errors import ApiError

        for ref in preload:  # an unknown name fails now, in one line
            try:
                resolve_served(ref)
            except ApiError as exc:
                raise (NotFoundError if exc.status == 404 else InvalidInputError)(f"--model: {exc.message}") from None
    app = create_app(api_key=api_key, max_batch=parallel, max_queue=max_queue, preload=preload,
                     max_body_bytes=max_body_bytes)
    uvicorn.run(app, host=host, port=port, log_level="info")
