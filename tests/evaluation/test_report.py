"""The report: one self-contained HTML file (no external URL, every chart present and
non-empty), and the Markdown and the JSONL telling the same numbers."""

import base64
import io
import json
import re
from html.parser import HTMLParser

import pytest

from compare_data import QUESTIONS

SPEC = """\
questions: questions.jsonl
texts: {domain: domain.txt, general: general.txt}
variants:
  base: {model: tiny}
  prompted: {extends: base, system: "Answer like the town hall."}
ablate: prompted
"""


class _Tables(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables, self.links, self._cell = [], [], None

    def handle_starttag(self, tag, attrs):
        self.links += [v for k, v in attrs if k in ("src", "href")]
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(self._cell)
            self._cell = None


def _markdown_table(text: str, title: str) -> list[list[str]]:
    block = text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in block.splitlines() if line.startswith("|") and not line.startswith("|---")]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", r)[1:-1]] for r in rows]


@pytest.fixture
def report(fake_engine, write_spec, tmp_path):
    from pimpmyllama.evaluation.runner import run_comparison

    (tmp_path / "domain.txt").write_text("The post office opens at 9am. " * 20)
    (tmp_path / "general.txt").write_text("Yesterday evening I ate ravioli with my friends. " * 20)
    fake_engine.replies.extend(["It opens at 9 H.", "No idea.", "Hello.", "At 9am.", "Yes, a CAP.", "Hi."])
    results = run_comparison(write_spec(SPEC, QUESTIONS), tmp_path / "out")
    # prompted-minus-prompt is base's build: its answers are base's, from the cache.
    assert len(fake_engine.prompts) == 6
    return results, tmp_path / "out"


def test_the_html_is_one_self_contained_file_with_every_chart(report):
    import matplotlib.image

    results, out = report
    page = (out / "report.html").read_text()
    parser = _Tables()
    parser.feed(page)
    assert parser.links and all(link.startswith("data:image/png;base64,") for link in parser.links)
    assert "http://" not in page and "https://" not in page
    charts = {name: (out / "charts" / f"{name}.png").read_bytes() for name in ("pass_rate", "perplexity", "context",
                                                                               "speed")}
    embedded = [base64.b64decode(link.split(",", 1)[1]) for link in parser.links]
    assert embedded == list(charts.values())
    for png in embedded:
        pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
        assert pixels.shape[0] > 100 and pixels.std() > 0.05  # drawn, not blank
    assert f"![{'Pass rate per variant (95 % Wilson interval)'}](charts/pass_rate.png)" in \
        (out / "report.md").read_text()
    assert results.variants[0].ppl_domain is not None and results.variants[0].ppl_general is not None


def test_markdown_html_and_jsonl_tell_the_same_numbers(report):
    results, out = report
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    parser = _Tables()
    parser.feed((out / "report.html").read_text())
    html_variants = parser.tables[0]
    md_variants = _markdown_table((out / "report.md").read_text(), "Variants")
    assert html_variants == md_variants
    header = md_variants[0]
    shown = {r[0]: dict(zip(header, r)) for r in md_variants[1:]}
    assert list(shown) == ["base", "prompted", "prompted-minus-prompt"]
    for name, cells in shown.items():
        mine = [r for r in rows if r["variant"] == name]
        checked = [r for r in mine if r["passed"] is not None]
        passed = sum(r["passed"] for r in checked)
        assert cells["passed"] == f"{passed}/{len(checked)}"
        assert cells["pass rate"] == f"{100 * passed / len(checked):.1f}%"
        assert cells["stop rate"] == f"{100 * sum(r['stopped'] for r in mine) / len(mine):.1f}%"
        assert cells["reply tokens"] == f"{sum(r['reply_tokens'] for r in mine) / len(mine):.1f}"
    assert shown["base"]["pass rate"] == "50.0%" and shown["base"]["95% interval"] == "9.5–90.5%"
    # The ablation and the flips, the same in both.
    for title in ("Ablation of prompted (pass rate 100.0%)", "Flips: base → prompted", "Questions"):
        index = [i for i, t in enumerate(re.findall(r"<h2>(.*?)</h2>", (out / "report.html").read_text()))
                 if t.replace("&gt;", ">") == title]
        assert index, title
        assert parser.tables[index[0]] == _markdown_table((out / "report.md").read_text(), title)
    assert _markdown_table((out / "report.md").read_text(), "Ablation of prompted (pass rate 100.0%)")[1] == [
        "prompt", "prompted-minus-prompt", "50.0%", "+50.0 pts"]
    assert _markdown_table((out / "report.md").read_text(), "Flips: base → prompted")[1:] == [
        ["wrong → right", "Is a cap required at the pool?"]]
