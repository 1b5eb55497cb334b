"""Word documents: paragraphs under their heading styles, and table rows."""

from pathlib import Path

from pimpmyllama.knowledge.documents import Block, HeadingPath, LoadedDocument, SkippedFile


def _heading_level(style_name: str) -> int | None:
    if style_name == "Title":
        return 1
    if style_name.startswith("Heading "):
        try:
            return int(style_name.split()[1])
        except (IndexError, ValueError):
            return None
    return None


def load_docx(path: Path) -> LoadedDocument:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(path))
    except PackageNotFoundError:
        raise SkippedFile(f"{path}: not a readable .docx file") from None
    headings = HeadingPath()
    blocks: list[Block] = []
    title = document.core_properties.title or None
    for paragraph in document.paragraphs:
        text = paragraph.text.strip()
        if not text:
            continue
        level = _heading_level(paragraph.style.name if paragraph.style is not None else "")
        if level is not None:
            headings.enter(level, text)
            title = title or text
        else:
            blocks.append(Block(text, headings.current))
    for table in document.tables:
        for row in table.rows:
            cells = [c.text.strip() for c in row.cells if c.text.strip()]
            if cells:
                blocks.append(Block(" | ".join(cells), headings.current))
    return LoadedDocument(str(path), blocks, title)
