"""HTML: the visible text of headings, paragraphs, list items, table cells and code."""

from pathlib import Path

from pimpmyllama.knowledge.documents import Block, HeadingPath, LoadedDocument
from pimpmyllama.knowledge.loaders.text import read_text_file

_HEADINGS = {f"h{i}": i for i in range(1, 7)}
_BLOCKS = {"p", "li", "pre", "blockquote", "td", "th", "dt", "dd", "figcaption", "caption"}
_DROP = ("script", "style", "noscript", "template", "nav", "footer", "svg", "head")


def load_html(path: Path) -> LoadedDocument:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(read_text_file(path), "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    for tag in soup(list(_DROP)):
        tag.decompose()
    headings = HeadingPath()
    blocks: list[Block] = []
    for element in soup.find_all(list(_HEADINGS) + list(_BLOCKS)):
        # Nested blocks (a <p> in an <li>) are read once, at the innermost level.
        if element.name in _BLOCKS and element.find(list(_BLOCKS)):
            continue
        text = element.get_text(" ", strip=True)
        if not text:
            continue
        if element.name in _HEADINGS:
            headings.enter(_HEADINGS[element.name], text)
            title = title or text
        else:
            blocks.append(Block(text, headings.current))
    if not blocks:  # markup without block elements: take the body's text
        body = soup.body or soup
        blocks = [Block(t) for t in body.get_text("\n", strip=True).split("\n\n") if t.strip()]
    return LoadedDocument(str(path), blocks, title)
