"""The web page at `/`: plain HTML, CSS and JavaScript files shipped inside the package
(serving/web/), no build step and nothing fetched from elsewhere, so it works offline.

The page and its files need no API key (they hold no data); the page sends the key,
which the user types into it, with each API call."""

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import Response

from pimpmyllama.serving.errors import ApiError

WEB_FILES = {
    "index.html": "text/html; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "markdown.js": "text/javascript; charset=utf-8",
    "api.js": "text/javascript; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
}


def web_file(name: str) -> Response:
    if name not in WEB_FILES:
        raise ApiError(404, f"no web file {name!r}", code="not_found")
    body = files("pimpmyllama.serving").joinpath("web", name).read_bytes()
    return Response(body, media_type=WEB_FILES[name], headers={"Cache-Control": "no-cache"})


def web_router() -> APIRouter:
    router = APIRouter()

    @router.get("/", include_in_schema=False)
    def page() -> Response:
        return web_file("index.html")

    @router.get("/web/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        return web_file(name)

    return router
