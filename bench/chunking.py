"""Choosing the default chunk size by measurement.

The same documents (standard-library modules as Markdown, their docstrings under
headings) are indexed at several chunk sizes; the same questions are asked of each
index with `pml kb eval`'s scorer. A question is a docstring's first sentence and
the expected passage is the one holding a later sentence of that docstring, so a
chunk must both match the question and carry its context: too small a chunk loses
the context, too large a one dilutes the match.

    python bench/chunking.py [--sizes 64,128,200,256] [--modules 120] [--questions 300]
"""

import argparse
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from corpus import docstrings, source_files, write_module_documents  # noqa: E402

from pimpmyllama.knowledge.chunking import split_sentences  # noqa: E402
from pimpmyllama.knowledge.embedders import load_embedder  # noqa: E402
from pimpmyllama.knowledge.evaluation import Question, evaluate  # noqa: E402
from pimpmyllama.knowledge.ingest import ingest  # noqa: E402
from pimpmyllama.knowledge.store import KnowledgeStore  # noqa: E402
from pimpmyllama.storage.db import open_database  # noqa: E402


def questions_for(files: list[Path], limit: int, seed: int = 0) -> list[Question]:
    by_stem = {f.name.split("-", 1)[1][:-3]: f.name for f in files}
    candidates = []
    for path in source_files(include_packages=False):
        if path.stem not in by_stem:
            continue
        for name, doc in docstrings(path):
            sentences = [s for s in split_sentences(" ".join(doc.split())) if len(s) > 30]
            if name and len(sentences) >= 3:
                candidates.append(Question(sentences[0], by_stem[path.stem], sentences[2][:60]))
    random.Random(seed).shuffle(candidates)
    return candidates[:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="64,128,200,256")
    parser.add_argument("--overlap", type=float, default=0.2, help="overlap as a share of the chunk size")
    parser.add_argument("--modules", type=int, default=120)
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("-k", type=int, default=4)
    args = parser.parse_args()
    embedder = load_embedder()
    with tempfile.TemporaryDirectory() as tmp:
        files = write_module_documents(Path(tmp) / "docs", args.modules)
        questions = questions_for(files, args.questions)
        print(f"{len(files)} module documents, {len(questions)} questions, k={args.k}\n")
        print(f"{'chunk size':>10} {'overlap':>8} {'chunks':>7} {'recall@k':>9} {'MRR@k':>7}")
        for size in (int(s) for s in args.sizes.split(",")):
            store = KnowledgeStore(open_database(Path(tmp) / f"{size}.db"))
            kb = store.create("c", embedder.name, embedder.dim, size, int(size * args.overlap))
            ingest(store, kb, embedder, [str(f) for f in files])
            report = evaluate(store, kb, embedder, questions, args.k)
            chunks = store.stats(kb)["chunks"]
            print(f"{size:>10} {kb.overlap:>8} {chunks:>7} {report.recall:>9.3f} {report.mrr:>7.3f}", flush=True)


if __name__ == "__main__":
    main()
