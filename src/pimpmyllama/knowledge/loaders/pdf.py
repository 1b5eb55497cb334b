"""PDF: the text of each page, with its page number."""

from pathlib import Path

from pimpmyllama.knowledge.documents import Block, LoadedDocument, SkippedFile
from pimpmyllama.knowledge.loaders.text import paragraphs


def load_pdf(path: Path) -> LoadedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            raise SkippedFile(f"{path}: encrypted PDF")
        blocks = []
        for number, page in enumerate(reader.pages, start=1):
            for paragraph in paragraphs(page.extract_text() or ""):
                blocks.append(Block(" ".join(paragraph.split()), page=number))
        title = (reader.metadata.title if reader.metadata else None) or None
    except PdfReadError as exc:
        raise SkippedFile(f"{path}: not a readable PDF ({exc})") from None
    return LoadedDocument(str(path), blocks, title)
