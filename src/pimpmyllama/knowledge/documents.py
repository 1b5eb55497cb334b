"""What a loader makes of a file: blocks of text that keep the file's structure."""

from dataclasses import dataclass, field

from pimpmyllama.errors import PmlError


class SkippedFile(PmlError):
    """A file that cannot be ingested (unreadable, binary, empty, enormous); the rest goes on."""


@dataclass(frozen=True)
class Block:
    """A paragraph-like piece of a document, with where it sits."""

    text: str
    heading: str | None = None  # the heading path it falls under, "Opening hours > Post office"
    page: int | None = None  # 1-based page number, for paged formats


@dataclass
class LoadedDocument:
    source: str
    blocks: list[Block] = field(default_factory=list)
    title: str | None = None

    @property
    def text(self) -> str:
        return "\n\n".join(b.text for b in self.blocks)


class HeadingPath:
    """Tracks the current heading path as headings of various levels go by."""

    def __init__(self):
        self._levels: list[tuple[int, str]] = []

    def enter(self, level: int, title: str) -> None:
        self._levels = [(lvl, t) for lvl, t in self._levels if lvl < level]
        self._levels.append((level, title.strip()))

    @property
    def current(self) -> str | None:
        return " > ".join(t for _, t in self._levels) or None
