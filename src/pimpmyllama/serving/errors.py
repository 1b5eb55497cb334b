"""Errors as OpenAI sends them: `{"error": {"message", "type", "param", "code"}}` with
a 4xx status, so clients raise their usual exceptions with our message. Nothing
reaches a client as a traceback."""

import logging
from contextlib import contextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from pimpmyllama.errors import BusyError, ContextOverflowError, NotFoundError, PmlError

log = logging.getLogger("pimpmyllama.serving")


class ApiError(Exception):
    """An error with its HTTP status and the request field it is about."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 type: str = "invalid_request_error", headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type
        self.headers = headers

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def from_pml_error(exc: PmlError, param: str | None = None) -> ApiError:
    if isinstance(exc, BusyError):
        return ApiError(503, str(exc), type="server_error", code="server_busy",
                        headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, NotFoundError):
        return ApiError(404, str(exc), param=param, code="model_not_found" if param == "model" else "not_found")
    if isinstance(exc, ContextOverflowError):
        return ApiError(400, str(exc), param=param or "messages", code="context_length_exceeded")
    return ApiError(400, str(exc), param=param)


@contextmanager
def naming(param: str):
    """A PmlError raised inside becomes the ApiError for the request field `param`."""
    try:
        yield
    except PmlError as exc:
        raise from_pml_error(exc, param=param) from None


def as_api_error(exc: "ApiError | PmlError") -> ApiError:
    return exc if isinstance(exc, ApiError) else from_pml_error(exc)


def from_validation_error(exc: RequestValidationError) -> ApiError:
    """The first problem of a request body, naming its field (dotted: `stream_options.x`)."""
    problem = exc.errors()[0]
    where = [str(part) for part in problem.get("loc", ()) if part != "body"]
    param = ".".join(where) or None
    kind = problem.get("type", "")
    if kind == "json_invalid":
        return ApiError(400, "the request body is not valid JSON", code="invalid_json")
    if kind == "extra_forbidden":
        return ApiError(400, f"unsupported field {param!r}", param=param, code="unsupported_parameter")
    if kind == "missing" and param is None:
        return ApiError(400, "the request needs a JSON body")
    if kind == "missing":
        return ApiError(400, f"missing field {param!r}", param=param, code="missing_required_parameter")
    message = problem.get("msg", "invalid value").removeprefix("Value error, ")
    return ApiError(400, f"{param}: {message}" if param else message, param=param, code="invalid_value")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError):
        return exc.response()

    @app.exception_handler(PmlError)
    async def _pml(request: Request, exc: PmlError):
        return from_pml_error(exc).response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return from_validation_error(exc).response()

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        message = f"no route {request.method} {request.url.path}" if exc.status_code in (404, 405) else str(exc.detail)
        return ApiError(exc.status_code, message).response()

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path)
        return ApiError(500, f"internal error: {type(exc).__name__}", type="server_error").response()
