"""The API key: with one set, every endpoint but /health needs `Authorization: Bearer KEY`."""

import hmac

from fastapi import Request

from pimpmyllama.serving.errors import ApiError


def require_key(api_key: str | None):
    """A FastAPI dependency that refuses a request without the key (none set: all pass)."""

    def check(request: Request) -> None:
        if api_key is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        # compare_digest: the time taken does not tell how much of a guess was right.
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), api_key.encode()):
            raise ApiError(401, "missing or wrong API key (send Authorization: Bearer KEY)",
                           code="invalid_api_key")

    return check
