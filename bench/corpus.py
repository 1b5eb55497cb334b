"""A real corpus that every machine with Python already has: the docstrings of the
standard library (and of the installed packages, for larger sizes).

    python bench/corpus.py --passages 100000     # writes bench/out/passages.jsonl
    python bench/corpus.py --modules 200 --out DIR   # one Markdown file per module

Passages are docstring paragraphs of at least 40 characters, in a fixed order
(sorted file paths), so every run builds the same corpus.
"""

import argparse
import ast
import json
import re
import sysconfig
from collections.abc import Iterator
from pathlib import Path

OUT = Path(__file__).parent / "out"


def source_files(include_packages: bool = True) -> Iterator[Path]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.rglob("*.py")):
        if not {"site-packages", "test", "tests", "idlelib"} & set(path.relative_to(stdlib).parts):
            yield path
    if include_packages:
        yield from sorted(Path(sysconfig.get_paths()["purelib"]).rglob("*.py"))


def docstrings(path: Path) -> Iterator[tuple[str, str]]:
    """(qualified name, docstring) of the module, its classes and functions."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}.{child.name}" if prefix else child.name
                doc = ast.get_docstring(child)
                if doc:
                    yield name, doc
                yield from walk(child, name)

    doc = ast.get_docstring(tree)
    if doc:
        yield "", doc
    yield from walk(tree, "")


def paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if len(p.strip()) >= 40]


def passages(limit: int) -> list[dict]:
    out = []
    for path in source_files():
        for name, doc in docstrings(path):
            for i, text in enumerate(paragraphs(doc)):
                out.append({"source": f"{path.name}:{name or '<module>'}#{i}", "text": text})
                if len(out) >= limit:
                    return out
    return out


def cached_passages(limit: int, folder: Path = OUT) -> list[dict]:
    path = folder / "passages.jsonl"
    if path.exists():
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        if len(rows) >= limit:
            return rows[:limit]
    rows = passages(limit)
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return rows


def write_module_documents(folder: Path, modules: int) -> list[Path]:
    """One Markdown file per standard-library module: its docstrings under headings."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for path in source_files(include_packages=False):
        sections = [(name, doc) for name, doc in docstrings(path)]
        if len(sections) < 3:
            continue
        lines = [f"# {path.stem}"]
        for name, doc in sections:
            lines += ["", f"## {name}" if name else "", "", doc]
        target = folder / f"{len(written):04d}-{path.stem}.md"
        target.write_text("\n".join(lines), encoding="utf-8")
        written.append(target)
        if len(written) >= modules:
            break
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=0)
    parser.add_argument("--modules", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT / "modules")
    args = parser.parse_args()
    if args.passages:
        print(f"{len(cached_passages(args.passages))} passages in {OUT / 'passages.jsonl'}")
    if args.modules:
        print(f"{len(write_module_documents(args.out, args.modules))} module documents in {args.out}")


if __name__ == "__main__":
    main()
