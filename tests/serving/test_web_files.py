"""The web page's files: all served, all packaged (a wheel holds them, not only a
checkout), and nothing loaded from elsewhere (the page works offline)."""

import fnmatch
import re
import tomllib
from pathlib import Path

from pimpmyllama.serving.web import WEB_FILES

ROOT = Path(__file__).parents[2]
WEB = ROOT / "src" / "pimpmyllama" / "serving" / "web"


def test_every_file_is_served_and_packaged():
    on_disk = sorted(p.name for p in WEB.iterdir())
    assert on_disk == sorted(WEB_FILES)
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "pimpmyllama.serving"]
    assert [n for n in on_disk if not any(fnmatch.fnmatch(f"web/{n}", g) for g in globs)] == []


def test_the_page_loads_only_its_own_files():
    html = (WEB / "index.html").read_text()
    loaded = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sorted(loaded) == ["/web/api.js", "/web/app.js", "/web/markdown.js", "/web/style.css"]
    for path in WEB.iterdir():
        text = path.read_text()
        assert not re.search(r"""(src|href)=["']https?:|url\(\s*["']?https?:|@import""", text), path.name
        assert not re.search(r"""fetch\(\s*["'`]https?:""", text), path.name


def test_the_page_needs_no_key_but_its_data_does(fake_engine):
    from fastapi.testclient import TestClient

    from pimpmyllama.serving.app import create_app

    with TestClient(create_app(api_key="k")) as keyed:
        page = keyed.get("/")
        assert (page.status_code, page.headers["content-type"]) == (200, "text/html; charset=utf-8")
        assert page.text == (WEB / "index.html").read_text()
        assert keyed.get("/web/app.js").text == (WEB / "app.js").read_text()
        assert keyed.get("/web/../errors.py").status_code == 404
        assert keyed.get("/v1/models").status_code == 401
