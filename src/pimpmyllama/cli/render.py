"""Renderings shared by chat, ask and the REPL."""

from rich.console import Console
from rich.markup import escape
from rich.table import Table


def _ranges(indexes: list[int]) -> str:
    """[0,1,2,5] -> '#0–#2, #5'"""
    parts, start, prev = [], None, None
    for i in indexes:
        if start is None:
            start = prev = i
        elif i == prev + 1:
            prev = i
        else:
            parts.append(f"#{start}" if start == prev else f"#{start}–#{prev}")
            start = prev = i
    if start is not None:
        parts.append(f"#{start}" if start == prev else f"#{start}–#{prev}")
    return ", ".join(parts)


def render_context(console: Console, packed, evicted: list[int] | None = None) -> None:
    table = Table("section", "items", "tokens", box=None, title="context", title_justify="left")
    for s in packed.sections:
        if s.name == "template":
            items = ""
        elif s.dropped:
            items = f"{s.kept} of {s.kept + s.dropped}"
        else:
            items = str(s.kept)
        table.add_row(s.name, items, str(s.tokens))
    table.add_row(
        "[bold]total[/]",
        "",
        f"[bold]{packed.total_tokens}[/] / {packed.budget}",
    )
    console.print(table)
    console.print(
        f"[dim]budget = num_ctx {packed.num_ctx} − max_new_tokens {packed.max_new_tokens} (room kept for the reply)[/]"
    )
    console.print(f"[dim]tokens counted with {escape(packed.counted_by)}[/]", highlight=False)
    for p in packed.knowledge:
        console.print(f"[dim]knowledge {escape(p.label.split(' ', 1)[0])} {escape(p.source)} · similarity {p.score:.3f}[/]",
                      highlight=False)
    for p in packed.recalled:
        console.print(f"[dim]recalled {escape(p.source)} · similarity {p.score:.3f}[/]", highlight=False)
    left_out = sorted((evicted or []) + packed.dropped_turns)
    if left_out:
        console.print(f"[dim]turns left out: {_ranges(left_out)}[/]")
    if packed.kept_turns:
        console.print(f"[dim]turns sent: {_ranges(packed.kept_turns)}[/]")


def render_sources(console: Console, packed) -> None:
    """The knowledge passages a reply could cite, under the reply."""
    if not packed.knowledge:
        return
    console.print("[dim]Sources:[/]")
    for p in packed.knowledge:
        number = p.label.split(" ", 1)[0]
        console.print(f"[dim]  {escape(number)} {escape(p.source)}[/]", highlight=False)


def usage_line(completion, packed) -> str:
    u = completion.usage
    parts = [
        f"{u.completion_tokens} tokens",
        f"{u.tokens_per_second:.1f} tok/s",
        f"first token {u.prefill_seconds:.2f}s",
        f"context {packed.total_tokens + u.completion_tokens}/{packed.num_ctx}",
    ]
    if completion.finish_reason == "length":
        parts.append("stopped at max_new_tokens")
    return " · ".join(parts)
