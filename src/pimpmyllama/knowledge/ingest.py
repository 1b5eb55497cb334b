"""Adding files to a knowledge base: incremental, batched, and safe to interrupt.

A file is identified by its absolute path and its content hash: an unchanged
file costs one hash; a changed one replaces its chunks in one transaction. Chunks
of several files are embedded together in full batches (the embedder is the
bottleneck), then each file is written in its own transaction, so a kill leaves
whole documents only and a re-run completes the rest without duplicates.
"""

import glob
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pimpmyllama.knowledge.chunking import Chunk, chunk_blocks
from pimpmyllama.knowledge.documents import LoadedDocument, SkippedFile
from pimpmyllama.knowledge.loaders import load_document, supported
from pimpmyllama.knowledge.retrieval import check_embedder
from pimpmyllama.knowledge.store import KnowledgeBase, KnowledgeStore
from pimpmyllama.progress import Progress

Warn = Callable[[str], None]


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one reason per skipped file
    chunks: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0


def shown_path(path: str | Path) -> str:
    """A path as text, for messages: bytes of its name that are not UTF-8 appear as \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _utf8_name(path: str | Path) -> bool:
    try:
        str(path).encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def expand_paths(paths: list[str], warn: Warn) -> list[Path]:
    """Files, folders (recursively, supported types only) and globs, each file once.
    A file whose name is not UTF-8 is skipped with a warning: a source is stored and
    shown by its name, which must be text."""
    seen: dict[Path, None] = {}
    for raw in paths:
        if any(ch in raw for ch in "*?["):
            matches = [Path(m) for m in sorted(glob.glob(raw, recursive=True))]
            if not matches:
                warn(f"{shown_path(raw)}: no file matches")
            candidates = [m for m in matches if m.is_file()]
        else:
            path = Path(raw).expanduser()
            if path.is_dir():
                candidates = sorted(p for p in path.rglob("*")
                                    if p.is_file() and supported(p) and not any(part.startswith(".") for part in p.relative_to(path).parts))
            elif path.exists():
                candidates = [path]
            else:
                warn(f"{shown_path(raw)}: does not exist")
                candidates = []
        for candidate in map(Path.resolve, candidates):
            if _utf8_name(candidate):
                seen.setdefault(candidate, None)
            else:
                warn(f"{shown_path(candidate)}: the file name is not valid UTF-8")
    return list(seen)


@dataclass
class _Pending:
    source: str
    content_hash: str
    size: int
    document: LoadedDocument
    chunks: list[Chunk]


def ingest(store: KnowledgeStore, kb: KnowledgeBase, embedder, paths: list[str], *,
           progress: Progress | None = None, warn: Warn | None = None, batch_chunks: int = 256) -> IngestReport:
    report = IngestReport()
    started = time.perf_counter()
    check_embedder(kb, embedder)

    def skip(reason: str) -> None:
        report.skipped.append(reason)
        if warn:
            warn(reason)

    files = expand_paths(paths, skip)
    pending: list[_Pending] = []
    done = 0

    def flush() -> None:
        nonlocal done
        if not pending:
            return
        texts = [c.embedding_text() for p in pending for c in p.chunks]
        t0 = time.perf_counter()
        vectors = embedder.encode(texts)
        report.embed_seconds += time.perf_counter() - t0
        offset = 0
        for item in pending:
            n = len(item.chunks)
            status = store.put_document(kb, item.source, item.content_hash, item.document.title, item.size,
                                        item.chunks, vectors[offset : offset + n])
            offset += n
            getattr(report, status).append(item.source)
            if status != "unchanged":
                report.chunks += n
            done += 1
            if progress:
                progress("embedding", done, len(files))
        pending.clear()

    for path in files:
        source = str(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            skip(f"{path}: cannot be read ({exc.strerror})")
            done += 1
            continue
        content_hash = hashlib.sha256(data).hexdigest()
        if store.document_hash(kb, source) == content_hash:
            report.unchanged.append(source)
            done += 1
            if progress:
                progress("embedding", done, len(files))
            continue
        try:
            document = load_document(path)
        except SkippedFile as exc:
            skip(str(exc))
            done += 1
            continue
        chunks = chunk_blocks(document.blocks, embedder.count_tokens, kb.chunk_size, kb.overlap)
        pending.append(_Pending(source, content_hash, len(data), document, chunks))
        if sum(len(p.chunks) for p in pending) >= batch_chunks:
            flush()
    flush()
    store.save_index(kb)
    report.seconds = time.perf_counter() - started
    return report
