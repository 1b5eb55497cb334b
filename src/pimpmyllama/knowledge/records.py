"""What the knowledge store returns: one dataclass per kind of row."""

from dataclasses import dataclass


@dataclass
class KnowledgeBase:
    id: int
    name: str
    embedder: str
    dim: int
    chunk_size: int
    overlap: int
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class KnowledgeBaseSummary:
    """A line of `pml kb list`."""

    name: str
    embedder: str
    chunk_size: int
    overlap: int
    updated_at: str
    documents: int
    chunks: int


@dataclass(frozen=True)
class KnowledgeBaseStats:
    documents: int
    bytes: int  # of the source files
    chunks: int
    tokens: int  # in the chunks, counted by the base's embedder


@dataclass(frozen=True)
class StoredDocument:
    id: int
    source: str  # absolute path
    title: str | None
    content_hash: str  # sha256 of the file's bytes
    bytes: int
    chunk_count: int
    added_at: str


@dataclass
class StoredChunk:
    id: int
    document_id: int
    source: str
    title: str | None
    position: int
    text: str
    heading: str | None
    page: int | None
    tokens: int
