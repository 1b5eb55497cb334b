"""The reports of a comparison, drawn from the results object alone:

    DIR/report.html    one self-contained file: inline CSS, the charts as base64 PNG
                       data URIs, no external URL (opens from disk, offline)
    DIR/report.md      the same tables, with the charts beside it in DIR/charts/
    DIR/results.jsonl  one line per variant × question × seed (written by the runner)

The tables are built once and rendered twice, so the HTML and the Markdown show
the same numbers. Every file is written atomically: an interrupted run leaves the
last complete report.
"""

import base64
import html
from dataclasses import dataclass
from pathlib import Path

from pimpmyllama.atomic import write_bytes_atomic, write_text_atomic
from pimpmyllama.evaluation.charts import CHARTS, draw_charts
from pimpmyllama.evaluation.results import ComparisonResults

_CHART_TITLES = {
    "pass_rate": "Pass rate per variant (95 % Wilson interval)",
    "perplexity": "Perplexity: domain (gained) vs general (forgotten)",
    "context": "How each variant's context was spent",
    "speed": "Speed",
}


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]]
    note: str = ""


def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def number(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def interval(bounds: tuple[float, float] | None) -> str:
    return "—" if bounds is None else f"{100 * bounds[0]:.1f}–{100 * bounds[1]:.1f}%"


def _mark(passed: bool | None) -> str:
    return "·" if passed is None else "✓" if passed else "✗"


def _judge_table(results: ComparisonResults) -> Table:
    a = results.judge_agreement
    note = (f"the judge {results.judge} read yes/no from its probabilities (P(yes) ≥ 0.5 passes); "
            + ("no reply has both a rule check and a verdict" if a is None else
               f"it agrees with the rule checks on {a['agree']} of {a['n']} replies ({percent(a['rate'])}), "
               f"Cohen's kappa {number(a['kappa'], 2)} (0: chance, 1: always); it ranks the replies the checks "
               f"pass above those they fail with AUC {number(a.get('auc'), 2)} (0.5: chance)"))
    return Table(f"Judge: {results.judge}", ["variant", "judged", "judge says right", "rule checks pass"],
                 [[v.name, str(v.judged), percent(v.judge_rate), percent(v.pass_rate)] for v in results.variants],
                 note)


def tables(results: ComparisonResults) -> list[Table]:
    out = [Table(
        "Variants",
        ["variant", "levers", "engine", "pass rate", "95% interval", "passed", "stop rate", "reply tokens",
         "ppl domain", "ppl general", "tok/s", "TTFT ms", "peak RSS MB"],
        [[v.name, " + ".join(v.levers) or "base", v.engine, percent(v.pass_rate), interval(v.interval),
          f"{v.passed}/{v.checked}", percent(v.stop_rate), number(v.mean_reply_tokens), number(v.ppl_domain, 2),
          number(v.ppl_general, 2), number(v.tokens_per_s), number(None if v.ttft_s is None else 1000 * v.ttft_s),
          number(v.peak_rss_mb, 0)] for v in results.variants],
        "engine = base model · vehicle = fine-tune, merge · destination = prompt, styles, knowledge",
    )]
    if results.judge is not None:
        out.append(_judge_table(results))
    for f in results.flips:
        rows = [["wrong → right", q] for q in f.wrong_to_right] + [["right → wrong", q] for q in f.right_to_wrong]
        out.append(Table(f"Flips: {f.a} → {f.b}", ["change", "question"], rows,
                         f"{len(f.wrong_to_right)} fixed, {len(f.right_to_wrong)} broken, "
                         f"{f.both_right} right in both, {f.both_wrong} wrong in both"))
    if results.ablation is not None:
        a = results.ablation
        out.append(Table(
            f"Ablation of {a.variant} (pass rate {percent(a.pass_rate)})", ["lever removed", "variant", "pass rate",
                                                                             "contribution"],
            [[r.lever, r.variant, percent(r.pass_rate),
              "—" if r.contribution is None else f"{100 * r.contribution:+.1f} pts"] for r in a.rows],
            "contribution = the whole variant's pass rate minus the pass rate without the lever"))
    names = [v.name for v in results.variants]
    by_question: dict[str, dict[str, list]] = {}
    for row in results.rows:
        by_question.setdefault(row.question, {}).setdefault(row.variant, []).append(row.passed)
    out.append(Table(
        "Questions", ["question", *names],
        [[q, *(" ".join(_mark(p) for p in marks.get(n, [])) or "" for n in names)] for q, marks in by_question.items()],
        "✓ passed · ✗ failed · · no check",
    ))
    return out


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(results: ComparisonResults, charts: list[str]) -> str:
    lines = [f"# Comparison: {results.spec}", ""]
    if not results.complete:
        lines += [(f"**Partial**: {len(results.rows)} of {results.expected_answers} answers (the run was stopped; "
                   "run it again to complete it)."), ""]
    for name in charts:
        lines += [f"![{_CHART_TITLES[name]}](charts/{name}.png)", ""]
    for t in tables(results):
        lines += [f"## {t.title}", ""]
        if t.note:
            lines += [t.note, ""]
        lines.append("| " + " | ".join(map(_md_cell, t.headers)) + " |")
        lines.append("|" + "---|" * len(t.headers))
        lines += ["| " + " | ".join(map(_md_cell, r)) + " |" for r in t.rows]
        lines.append("")
    return "\n".join(lines)


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
.note { color: #666; font-size: 0.9em; }
.partial { background: #fff3cd; padding: 0.5em 1em; }
"""


def render_html(results: ComparisonResults, charts: dict[str, bytes]) -> str:
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>Comparison: {e(results.spec)}</title><style>{_CSS}</style></head><body>",
             f"<h1>Comparison: {e(results.spec)}</h1>"]
    if not results.complete:
        parts.append(f'<p class="partial"><b>Partial</b>: {len(results.rows)} of {results.expected_answers} '
                     "answers (the run was stopped; run it again to complete it).</p>")
    for name, png in charts.items():
        data = base64.b64encode(png).decode("ascii")
        parts.append(f'<figure><img alt="{e(_CHART_TITLES[name])}" id="chart-{name}" '
                     f'src="data:image/png;base64,{data}"><figcaption>{e(_CHART_TITLES[name])}</figcaption></figure>')
    for t in tables(results):
        parts.append(f"<h2>{e(t.title)}</h2>")
        if t.note:
            parts.append(f'<p class="note">{e(t.note)}</p>')
        parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in t.headers) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in t.rows]
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_reports(results: ComparisonResults, out_dir: Path) -> None:
    charts = draw_charts(results)
    for name in CHARTS:
        write_bytes_atomic(out_dir / "charts" / f"{name}.png", charts[name])
    write_text_atomic(out_dir / "report.md", render_markdown(results, list(CHARTS)))
    write_text_atomic(out_dir / "report.html", render_html(results, charts))
