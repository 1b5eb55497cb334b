"""Talking to an OpenAI-compatible endpoint over HTTP: requests with bounded retries,
and every failure as one `RemoteError` line (a context-length refusal as a
`ContextOverflowError`).

Retried: answers 429 and 503, up to `max_retries` times (default 3), waiting what
the answer's Retry-After asks (seconds or an HTTP date) or else 0.5 s, 1 s, 2 s, …
(doubling); a wait over `MAX_WAIT` seconds is not made, the request fails instead.
Nothing else is retried: a refused connection, a timeout, a bad key or a server
error fails at once, so the user hears about it at once.
"""

import json
import os
import re
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime

import httpx

from pimpmyllama.errors import ContextOverflowError, InvalidInputError, PmlError, RemoteError
from pimpmyllama.prompting.remote_model import RemoteModel

DEFAULT_TIMEOUT = 60.0
DEFAULT_RETRIES = 3
BACKOFF = 0.5  # the first wait when the answer gives no Retry-After; doubled each time
MAX_WAIT = 30.0
RETRIED = (429, 503)
# What OpenAI, vLLM, llama-server and Ollama say when a prompt is over the context.
_CONTEXT_REFUSAL = re.compile(r"context.?(length|size|window)|maximum context|too many tokens|exceeds? the "
                              r"(available )?context", re.IGNORECASE)


class RemoteClient:
    def __init__(self, spec: RemoteModel):
        self.base = spec.endpoint  # .../v1: OpenAI's routes
        self.root = re.sub(r"/v1$", "", self.base)  # llama-server's own routes (/tokenize, /props)
        self.timeout = spec.timeout or DEFAULT_TIMEOUT
        self.max_retries = DEFAULT_RETRIES if spec.max_retries is None else spec.max_retries
        self.key_env = spec.api_key_env
        headers = {}
        if spec.api_key_env:
            key = os.environ.get(spec.api_key_env)
            if not key:
                raise InvalidInputError(f"the environment variable {spec.api_key_env} (the build's api_key_env) "
                                        "is not set")
            headers["Authorization"] = f"Bearer {key}"
        self._http = httpx.Client(timeout=httpx.Timeout(self.timeout), headers=headers)

    def get_json(self, path: str, *, root: bool = False) -> dict | None:
        """The JSON an endpoint answers a GET with; None when it has no such route (4xx)."""
        return self._optional(lambda: self._http.get(self._url(path, root)))

    def post_json(self, path: str, body: dict, *, root: bool = False, optional: bool = False) -> dict | None:
        """The JSON answer to a POST; with `optional`, None when the route is not there (4xx)."""
        send = lambda: self._http.post(self._url(path, root), json=body)  # noqa: E731
        if optional:
            return self._optional(send)
        response = self._send(send)
        return response.json()

    def stream_events(self, path: str, body: dict) -> "EventStream":
        """The server-sent events of a streamed POST; the answer's status is checked (and
        429/503 retried) before this returns, so a refused request never starts a reply."""
        request = self._http.build_request("POST", self._url(path, False), json=body)
        response = self._send(lambda: self._http.send(request, stream=True), streamed=True)
        return EventStream(response, self)

    def close(self) -> None:
        self._http.close()

    def _url(self, path: str, root: bool) -> str:
        return (self.root if root else self.base) + path

    def _optional(self, send) -> dict | None:
        try:
            return self._send(send).json()
        except RemoteError as exc:
            if getattr(exc, "status", None) in (400, 404, 405, 422, 501):
                return None
            raise
        except json.JSONDecodeError:
            return None

    def _send(self, send, streamed: bool = False) -> httpx.Response:
        for attempt in range(self.max_retries + 1):
            try:
                response = send()
            except httpx.TimeoutException:
                raise RemoteError(f"the remote at {self.base} did not answer within {self.timeout:g} s") from None
            except httpx.HTTPError as exc:
                raise RemoteError(f"cannot reach the remote at {self.base} ({_reason(exc)})") from None
            if response.status_code < 400:
                return response
            if streamed:
                response.read()
                response.close()
            wait = _wait(response, attempt)
            if response.status_code not in RETRIED or attempt == self.max_retries or wait > MAX_WAIT:
                raise self._refusal(response, attempt, wait)
            time.sleep(wait)
        raise AssertionError("unreachable")

    def _refusal(self, response: httpx.Response, attempts: int, wait: float) -> PmlError:
        status, message = response.status_code, _error_text(response)
        if status in (401, 403):
            hint = f"check {self.key_env}" if self.key_env else "give one with api_key_env in the build's from:"
            error = RemoteError(f"the remote at {self.base} refused the key ({status}: {message}); {hint}")
        elif status in (400, 413) and _CONTEXT_REFUSAL.search(message):
            error = ContextOverflowError(f"the remote at {self.base} refused the prompt as over its context "
                                         f"({message}); set a smaller num_ctx in the build's from:")
        elif status in RETRIED:
            why = f": it asks to wait {wait:g} s" if wait > MAX_WAIT else f" after {attempts} retries"
            error = RemoteError(f"the remote at {self.base} is busy ({status}: {message}); gave up{why}")
        elif status >= 500:
            error = RemoteError(f"the remote at {self.base} failed ({status}: {message})")
        else:
            error = RemoteError(f"the remote at {self.base} refused the request ({status}: {message})")
        error.status = status
        return error


class EventStream:
    """The `data:` payloads of a server-sent event stream, as dicts, up to `[DONE]`; a
    connection that drops or stalls is a `RemoteError`. Close it when done."""

    def __init__(self, response: httpx.Response, client: RemoteClient):
        self._response = response
        self._client = client
        self.done = False  # `[DONE]` arrived

    def __iter__(self) -> Iterator[dict]:
        base = self._client.base
        try:
            for line in self._response.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line.removeprefix("data:").strip()
                if data == "[DONE]":
                    self.done = True
                    return
                event = json.loads(data)
                if isinstance(event, dict) and event.get("error"):
                    raise RemoteError(f"the remote at {base} failed mid-reply ({_message_of(event)})")
                yield event
        except httpx.TimeoutException:
            raise RemoteError(f"the remote at {base} stalled: nothing for {self._client.timeout:g} s "
                              "mid-reply") from None
        except httpx.HTTPError as exc:
            raise RemoteError(f"the remote at {base} dropped the connection mid-reply ({_reason(exc)})") from None
        except json.JSONDecodeError:
            raise RemoteError(f"the remote at {base} sent an event that is not JSON") from None
        raise RemoteError(f"the remote at {base} dropped the connection mid-reply (the stream ended early)")

    def close(self) -> None:
        self._response.close()


def _wait(response: httpx.Response, attempt: int) -> float:
    """Seconds to wait before the next try: Retry-After's, else the doubling backoff."""
    value = response.headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
            except (TypeError, ValueError):
                pass
    return BACKOFF * 2 ** attempt


def _message_of(data) -> str:
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or error)
    if error:
        return str(error)
    return str(data.get("detail") or data.get("message") or data) if isinstance(data, dict) else str(data)


def _error_text(response: httpx.Response) -> str:
    try:
        text = _message_of(response.json())
    except (json.JSONDecodeError, UnicodeDecodeError):
        text = response.text or response.reason_phrase
    return " ".join(text.split())[:300]


def _reason(exc: httpx.HTTPError) -> str:
    text = str(exc) or type(exc).__name__
    if "Connection refused" in text:
        return "connection refused"
    return " ".join(text.split())[:200]
