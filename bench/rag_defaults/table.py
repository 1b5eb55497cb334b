"""The table of docs/builds-and-context.md ("Choosing the retrieval defaults"): each
variant's pass rate on the two question sets, from their comparisons' results.

    PML_HOME=/tmp/rag pml kb create town && pml kb add town examples/town-hall/docs
    pml kb create town-small --chunk-size 48 --overlap 0 && pml kb add town-small examples/town-hall/docs
    pml kb create camp && pml kb add camp bench/rag_defaults/campsite/docs
    pml kb create camp-small --chunk-size 48 --overlap 0 && pml kb add camp-small bench/rag_defaults/campsite/docs
    pml compare bench/rag_defaults/town-hall.yml -o out/rag-town
    pml compare bench/rag_defaults/campsite.yml -o out/rag-camp
    python bench/rag_defaults/table.py out/rag-town out/rag-camp
"""

import json
import sys
from collections import defaultdict
from pathlib import Path


def tally(folder: Path) -> dict[str, list[int]]:
    """variant -> [passed, checked, stopped, reply tokens], over its checked rows."""
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for line in (folder / "results.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["passed"] is None:
            continue
        t = out[row["variant"]]
        t[0] += row["passed"]
        t[1] += 1
        t[2] += row["finish_reason"] == "stop"
        t[3] += row["reply_tokens"]
    return out


def main(folders: list[str]) -> None:
    tallies = [tally(Path(f)) for f in folders]
    names = list(tallies[0])
    print("| variant | " + " | ".join(Path(f).name for f in folders) + " | both | stop rate | reply tokens |")
    print("|---|" + "---|" * (len(folders) + 3))
    for name in names:
        parts = [t.get(name, [0, 0, 0, 0]) for t in tallies]
        passed, checked = sum(p[0] for p in parts), sum(p[1] for p in parts)
        stopped, tokens = sum(p[2] for p in parts), sum(p[3] for p in parts)
        cells = [f"{p[0]}/{p[1]}" for p in parts]
        print(f"| {name} | " + " | ".join(cells) + f" | **{passed}/{checked}** ({100 * passed / checked:.0f}%) | "
              f"{100 * stopped / checked:.0f}% | {tokens / checked:.1f} |")


if __name__ == "__main__":
    main(sys.argv[1:] or ["out/rag-town", "out/rag-camp"])
