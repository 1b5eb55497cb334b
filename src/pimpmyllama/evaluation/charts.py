"""The report's charts, as PNG bytes (matplotlib, Agg: no display needed).

    pass_rate   pass rate per variant, with its Wilson 95 % interval
    perplexity  domain vs general perplexity per variant (gained vs forgotten)
    context     how each variant's prompt was spent, by packer section (stacked)
    speed       decoding tokens/s and time to first token per variant

Each variant is labelled with its levers; bars are coloured by what the variant
changes: the engine alone, the vehicle (fine-tune, merge), the destination
(prompt, styles, knowledge), or both.
"""

import io

from pimpmyllama.evaluation.results import SECTIONS, ComparisonResults, VariantSummary
from pimpmyllama.evaluation.variants import DESTINATION, VEHICLE

CHARTS = ("pass_rate", "perplexity", "context", "speed")
_COLOURS = {"engine": "#9e9e9e", "vehicle": "#d9822b", "destination": "#2b7bd9", "both": "#7b3fb8"}


def lever_group(levers: list[str]) -> str:
    vehicle = any(lv in VEHICLE for lv in levers)
    destination = any(lv in DESTINATION for lv in levers)
    return "both" if vehicle and destination else "vehicle" if vehicle else "destination" if destination else "engine"


def _label(v: VariantSummary) -> str:
    return f"{v.name}\n{' + '.join(v.levers) or 'base'}"


def _figure(rows: int = 1, cols: int = 1, n: int = 1):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(rows, cols, figsize=(max(6.0, 1.3 * n + 2) * cols, 4.2), squeeze=False)
    return plt, fig, axes[0]


def _png(plt, fig) -> bytes:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def _nothing(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666666")
    ax.set_xticks([])
    ax.set_yticks([])


def _legend(ax, variants: list[VariantSummary]) -> None:
    from matplotlib.patches import Patch

    groups = dict.fromkeys(lever_group(v.levers) for v in variants)
    ax.legend(handles=[Patch(color=_COLOURS[g], label=g) for g in groups], fontsize=8, loc="best")


def pass_rate_chart(results: ComparisonResults) -> bytes:
    vs = results.variants
    plt, fig, (ax,) = _figure(n=len(vs))
    xs = range(len(vs))
    rates = [v.pass_rate or 0.0 for v in vs]
    # max(0, ...): at 0/n and n/n the bound equals the rate, give or take a rounding error.
    low = [max(0.0, v.pass_rate - v.interval[0]) if v.interval else 0.0 for v in vs]
    high = [max(0.0, v.interval[1] - v.pass_rate) if v.interval else 0.0 for v in vs]
    ax.bar(xs, rates, color=[_COLOURS[lever_group(v.levers)] for v in vs], yerr=[low, high], capsize=4)
    for x, v in zip(xs, vs):
        ax.text(x, 0.02, "—" if v.pass_rate is None else f"{v.passed}/{v.checked}", ha="center", fontsize=8)
    ax.set_xticks(list(xs), [_label(v) for v in vs], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("pass rate (95 % interval)")
    ax.set_title("Which lever moved the result")
    _legend(ax, vs)
    return _png(plt, fig)


def perplexity_chart(results: ComparisonResults) -> bytes:
    vs = results.variants
    plt, fig, (ax,) = _figure(n=len(vs))
    kinds = [k for k in ("domain", "general") if any(getattr(v, f"ppl_{k}") is not None for v in vs)]
    if not kinds:
        _nothing(ax, "no perplexity measured")
    width = 0.8 / max(len(kinds), 1)
    for i, kind in enumerate(kinds):
        values = [getattr(v, f"ppl_{kind}") or 0.0 for v in vs]
        ax.bar([x + i * width for x in range(len(vs))], values, width,
               label=f"{kind} ({'gained' if kind == 'domain' else 'forgotten'} when lower / higher)")
    if kinds:
        ax.set_xticks([x + width * (len(kinds) - 1) / 2 for x in range(len(vs))], [_label(v) for v in vs], fontsize=8)
        ax.set_ylabel("perplexity (lower: less surprised)")
        ax.legend(fontsize=8)
    ax.set_title("Domain vs general perplexity")
    return _png(plt, fig)


def context_chart(results: ComparisonResults) -> bytes:
    vs = results.variants
    plt, fig, (ax,) = _figure(n=len(vs))
    if not any(v.context for v in vs):
        _nothing(ax, "no answers yet")
    left = [0.0] * len(vs)
    ys = range(len(vs))
    for section in SECTIONS:
        values = [v.context.get(section, 0.0) for v in vs]
        if any(values):
            ax.barh(list(ys), values, left=left, label=section)
            left = [a + b for a, b in zip(left, values)]
    ax.set_yticks(list(ys), [_label(v).replace("\n", " · ") for v in vs], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("mean prompt tokens per question")
    ax.set_title("How the context was spent")
    if any(left):
        ax.legend(fontsize=8, loc="lower right")
    return _png(plt, fig)


def speed_chart(results: ComparisonResults) -> bytes:
    vs = results.variants
    plt, fig, (left, right) = _figure(1, 2, n=len(vs))
    colours = [_COLOURS[lever_group(v.levers)] for v in vs]
    xs = list(range(len(vs)))
    left.bar(xs, [v.tokens_per_s or 0.0 for v in vs], color=colours)
    left.set_ylabel("tokens/s (decoding)")
    right.bar(xs, [1000 * (v.ttft_s or 0.0) for v in vs], color=colours)
    right.set_ylabel("time to first token (ms)")
    for ax in (left, right):
        ax.set_xticks(xs, [_label(v) for v in vs], fontsize=8)
    left.set_title("Speed")
    return _png(plt, fig)


def draw_charts(results: ComparisonResults) -> dict[str, bytes]:
    return {"pass_rate": pass_rate_chart(results), "perplexity": perplexity_chart(results),
            "context": context_chart(results), "speed": speed_chart(results)}
