"""How a prompt was spent, as data: what `/context` shows, `pml chat --json` prints and
the server returns — read from the packer's `PackedContext`, never recounted."""

from pathlib import PurePath

from pimpmyllama.prompting.packer import PackedContext, Passage


def context_dict(packed: PackedContext, evicted: list[int] | None = None) -> dict:
    """The sections with their tokens, the budget, the turns sent and those left out
    (`evicted`: turns that had already left a session's window, plus those the packer dropped)."""
    return {
        "sections": [s.__dict__ for s in packed.sections],
        "total_tokens": packed.total_tokens,
        "budget": packed.budget,
        "num_ctx": packed.num_ctx,
        "max_new_tokens": packed.max_new_tokens,
        "counted_by": packed.counted_by,
        "kept_turns": packed.kept_turns,
        "knowledge": [{"label": p.label, "source": p.source, "score": p.score} for p in packed.knowledge],
        "recalled": [{"source": p.source, "score": p.score} for p in packed.recalled],
        "left_out_turns": sorted((evicted or []) + packed.dropped_turns),
    }


def source_dict(number: int, passage: Passage) -> dict:
    """A knowledge passage a reply may cite as [number]: its document, chunk, score and text."""
    return {"number": number, "document": PurePath(passage.document).name, "source": passage.document,
            "chunk": passage.chunk, "page": passage.page, "score": passage.score, "text": passage.text}
