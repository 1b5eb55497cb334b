"""Plain text and Markdown. Markdown headings become the blocks' heading paths."""

import re
from pathlib import Path

from pimpmyllama.knowledge.documents import Block, HeadingPath, LoadedDocument, SkippedFile

_ATX = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^(```|~~~)")


def read_text_file(path: Path) -> str:
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise SkippedFile(f"{path}: binary file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SkippedFile(f"{path}: not UTF-8 text") from None


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def load_text(path: Path) -> LoadedDocument:
    text = read_text_file(path)
    return LoadedDocument(str(path), [Block(p) for p in paragraphs(text)])


def load_markdown(path: Path) -> LoadedDocument:
    text = read_text_file(path)
    headings = HeadingPath()
    blocks: list[Block] = []
    title = None
    buffer: list[str] = []
    in_fence = False

    def flush():
        for p in paragraphs("\n".join(buffer)):
            blocks.append(Block(p, headings.current))
        buffer.clear()

    for line in text.splitlines():
        if _FENCE.match(line.strip()):
            in_fence = not in_fence
            buffer.append(line)
            continue
        match = None if in_fence else _ATX.match(line)
        if match:
            flush()
            level, heading = len(match.group(1)), match.group(2)
            headings.enter(level, heading)
            title = title or heading
        else:
            buffer.append(line)
    flush()
    return LoadedDocument(str(path), blocks, title)
