"""Loaders, one per file format, registered by extension."""

from collections.abc import Callable
from pathlib import Path

from pimpmyllama.knowledge.documents import LoadedDocument, SkippedFile
from pimpmyllama.knowledge.loaders import docx, html, jsonl, pdf, text

MAX_BYTES = 50_000_000  # larger files are skipped: almost surely not meant as knowledge

LOADERS: dict[str, Callable[[Path], LoadedDocument]] = {
    ".txt": text.load_text,
    ".text": text.load_text,
    ".md": text.load_markdown,
    ".markdown": text.load_markdown,
    ".html": html.load_html,
    ".htm": html.load_html,
    ".pdf": pdf.load_pdf,
    ".docx": docx.load_docx,
    ".json": jsonl.load_json,
    ".jsonl": jsonl.load_jsonl,
}


def supported(path: Path) -> bool:
    return path.suffix.lower() in LOADERS


def load_document(path: Path) -> LoadedDocument:
    """Load one file; raise SkippedFile (with the reason) when it cannot be used."""
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise SkippedFile(f"{path}: unsupported file type (supported: {', '.join(sorted(LOADERS))})")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise SkippedFile(f"{path}: cannot be read ({exc.strerror})") from None
    if size > MAX_BYTES:
        raise SkippedFile(f"{path}: {size / 1e6:.0f} MB is larger than the {MAX_BYTES / 1e6:.0f} MB limit")
    if size == 0:
        raise SkippedFile(f"{path}: empty file")
    try:
        document = loader(path)
    except SkippedFile:
        raise
    except PermissionError:
        raise SkippedFile(f"{path}: permission denied") from None
    except Exception as exc:  # a broken file of any format must not stop the others
        raise SkippedFile(f"{path}: cannot be parsed ({type(exc).__name__}: {exc})") from None
    document.blocks = [b for b in document.blocks if b.text.strip()]
    if not document.blocks:
        raise SkippedFile(f"{path}: no text found")
    return document
