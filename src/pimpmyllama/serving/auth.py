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


def read_api_key(path) -> str:
    """The key in a file (its first line, spaces stripped): keeps it out of `ps` and shell history."""
    from pathlib import Path

    from pimpmyllama.errors import InvalidInputError, NotFoundError

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"no API key file {str(path)!r}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read the API key file {str(path)!r}: {exc}") from None
    key = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not key:
        raise InvalidInputError(f"the API key file {str(path)!r} is empty")
    return key
