"""Token-aware chunking that respects the document's structure.

Blocks (paragraphs) are kept whole when they fit; longer ones are cut at sentence
ends, and only a sentence longer than a chunk is cut between words. Units are
packed greedily into chunks of at most `chunk_size` tokens (counted with the
embedder's own tokenizer, since text beyond its window would not be embedded),
a new heading starts a new chunk, and each chunk begins with the last whole
sentences of the one before, up to `overlap` tokens.
"""

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pimpmyllama.knowledge.documents import Block

# Sentence ends: . ! ? … and their CJK forms, followed by space; or a line break.
_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])\s+|\n+")

Counter = Callable[[str], int]


@dataclass(frozen=True)
class Chunk:
    position: int
    text: str
    heading: str | None
    page: int | None
    tokens: int

    def embedding_text(self) -> str:
        """The heading goes with the text into the embedding: it says what the text is about."""
        return f"{self.heading}\n{self.text}" if self.heading else self.text


@dataclass(frozen=True)
class _Unit:
    text: str
    heading: str | None
    page: int | None
    tokens: int
    joiner: str  # what separates it from the unit before: a paragraph break or a space


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def _split_words(text: str, count: Counter, limit: int) -> list[str]:
    pieces, current = [], []
    for word in text.split():
        if count(" ".join(current + [word])) <= limit:
            current.append(word)
            continue
        if current:
            pieces.append(" ".join(current))
        current = [word]
        while count(current[0]) > limit:  # a single "word" longer than a chunk: cut its characters
            word = current[0]
            cut = max(1, len(word) * limit // max(count(word), 1))
            pieces.append(word[:cut])
            current = [word[cut:]]
    if current:
        pieces.append(" ".join(current))
    return pieces


def _units(blocks: Sequence[Block], count: Counter, chunk_size: int) -> list[_Unit]:
    units = []
    for block in blocks:
        text = block.text.strip()
        if count(text) <= chunk_size:
            pieces = [text]
        else:
            pieces = []
            for sentence in split_sentences(text):
                pieces.extend([sentence] if count(sentence) <= chunk_size else _split_words(sentence, count, chunk_size))
        for i, piece in enumerate(pieces):
            units.append(_Unit(piece, block.heading, block.page, count(piece), "\n\n" if i == 0 else " "))
    return units


def _join(units: Sequence[_Unit]) -> str:
    return units[0].text + "".join(u.joiner + u.text for u in units[1:])


def chunk_blocks(blocks: Sequence[Block], count: Counter, chunk_size: int = 256, overlap: int = 32) -> list[Chunk]:
    if chunk_size < 2:
        raise ValueError("chunk_size must be at least 2 tokens")
    if not 0 <= overlap < chunk_size:
        raise ValueError("overlap must be at least 0 and less than chunk_size")
    queue = _units(blocks, count, chunk_size)
    chunks: list[Chunk] = []
    current: list[_Unit] = []
    carried = 0  # how many units at the start of `current` are overlap from the previous chunk

    def emit() -> list[_Unit]:
        """Close the current chunk; return the units it hands over as overlap."""
        nonlocal current, carried
        units = current
        text = _join(units)
        tokens = count(text)
        # Joining can tokenize a little differently from the parts; trim until it truly fits.
        while tokens > chunk_size and len(units) > 1:
            queue.insert(0, units[-1])
            units = units[:-1]
            text = _join(units)
            tokens = count(text)
        if len(units) > carried:  # a chunk of nothing but overlap would repeat the last one
            chunks.append(Chunk(len(chunks), text, units[0].heading, units[0].page, tokens))
        tail: list[_Unit] = []
        for unit in reversed(units[carried:] if len(units) > carried else units):
            if sum(u.tokens for u in tail) + unit.tokens > overlap:
                break
            tail.insert(0, unit)
        current, carried = [], 0
        return tail

    while queue:
        unit = queue.pop(0)
        if current and unit.heading != current[-1].heading:
            emit()  # a new section: no overlap across headings
        elif current and sum(u.tokens for u in current) + unit.tokens > chunk_size:
            tail = emit()
            # Keep as much overlap as leaves room for the next unit.
            while tail and sum(u.tokens for u in tail) + unit.tokens > chunk_size:
                tail.pop(0)
            current, carried = list(tail), len(tail)
        current.append(unit)
    if current:
        emit()
    return chunks
