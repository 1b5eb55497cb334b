"""The request body's size limit: a body over it is refused with 413 before it is
read (by its Content-Length), or as soon as the bytes received pass the limit (a
body sent without one); the server reads no more of it. Nothing reaches the routes
until the whole body is in."""

from pimpmyllama.serving.errors import ApiError

UPLOAD_OVERHEAD = 1_000_000  # a multipart form's own bytes around the file


def is_upload(path: str) -> bool:
    return path.startswith("/pml/knowledge/") and path.endswith("/documents")


class BodyLimit:
    """ASGI middleware: bodies up to `max_bytes`; uploads (`is_upload`) up to `upload_bytes`."""

    def __init__(self, app, max_bytes: int, upload_bytes: int):
        self.app, self.max_bytes, self.upload_bytes = app, max_bytes, upload_bytes + UPLOAD_OVERHEAD

    def _too_large(self, limit: int) -> ApiError:
        return ApiError(413, f"the request body is larger than the server's {limit / 1e6:g} MB limit "
                             "(pml serve --max-body-mb)", code="request_too_large")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.upload_bytes if is_upload(scope["path"]) else self.max_bytes
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await self._too_large(limit).response()(scope, receive, send)
        # Read the body here, at most `limit` bytes of it, then hand it on whole.
        body, more = [], True
        received = 0
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body.append(message.get("body", b""))
            received += len(body[-1])
            more = message.get("more_body", False)
            if received > limit:
                return await self._too_large(limit).response()(scope, receive, send)
        whole = {"type": "http.request", "body": b"".join(body), "more_body": False}

        async def replay():
            nonlocal whole
            if whole is not None:
                message, whole = whole, None
                return message
            return await receive()

        await self.app(scope, replay, send)
