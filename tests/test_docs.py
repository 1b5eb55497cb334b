"""The manual stays true: the CLI reference is the CLI's own help, and every link lands."""

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)")


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = heading.lstrip("#").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def test_the_cli_reference_is_the_clis_help():
    spec = importlib.util.spec_from_file_location("make_cli_reference", ROOT / "docs" / "make_cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = (ROOT / "docs" / "cli.md").read_text()
    assert written == module.reference(), "docs/cli.md is stale: run python docs/make_cli_reference.py"
    assert "## `pml kb search`" in written and "--filter" in written


def test_every_relative_link_lands():
    checked = 0
    for page in PAGES:
        for target, anchor in LINK.findall(page.read_text()):
            if "://" in target:
                continue
            dest = (page.parent / target) if target else page
            assert dest.exists(), f"{page.name}: {target} does not exist"
            if anchor:
                anchors = {_anchor(line) for line in dest.read_text().splitlines() if line.startswith("#")}
                assert anchor in anchors, f"{page.name}: no heading #{anchor} in {dest.name}"
            checked += 1
    assert checked >= 15
