"""A knowledge base as one object: create it, add documents, search it, embed it again.

What `pml kb` and the Python API share; the store (`KnowledgeStore`) holds the rows,
this wires the embedder, the loaders, ingestion and retrieval around it.
"""

from dataclasses import dataclass

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.knowledge import defaults
from pimpmyllama.knowledge.chunking import Chunk
from pimpmyllama.knowledge.embedders import Embedder, canonical_name, load_embedder
from pimpmyllama.knowledge.ingest import IngestReport, Warn, ingest
from pimpmyllama.knowledge.retrieval import Hit, retrieve
from pimpmyllama.models.defaults import DEFAULT_EMBEDDER
from pimpmyllama.knowledge.store import KnowledgeBase, KnowledgeStore, parse_filters
from pimpmyllama.progress import Progress
from pimpmyllama.storage.db import open_database
from pimpmyllama.text import check_text


@dataclass
class Base:
    store: KnowledgeStore
    record: KnowledgeBase

    @property
    def name(self) -> str:
        return self.record.name

    def embedder(self, name: str | None = None) -> Embedder:
        return load_embedder(canonical_name(name) if name else self.record.embedder)

    def add(self, paths: list[str], *, progress: Progress | None = None, warn: Warn | None = None,
            batch_chunks: int = 256) -> IngestReport:
        """Add or update documents (files, folders, globs); unchanged files are skipped."""
        return ingest(self.store, self.record, self.embedder(), paths, progress=progress, warn=warn,
                      batch_chunks=batch_chunks)

    def search(self, query: str, k: int = defaults.TOP_K, *, mode: str = "hybrid", filters: list[str] | None = None,
               mmr: bool = False, embedder: str | None = None) -> list[Hit]:
        """The passages nearest `query`; `filters` as FIELD=VALUE strings."""
        check_text(query, "the query")  # before the embedder loads
        wanted = parse_filters(filters)
        return retrieve(self.store, self.record, self.embedder(embedder), query, k, mode=mode, filters=wanted,
                        mmr=mmr)

    def reindex(self, embedder: str | None = None, progress: Progress | None = None) -> int:
        """Embed every chunk again (with another embedder, if named); the base keeps
        answering with its old vectors until the new ones replace them in one step."""
        e = self.embedder(embedder)
        chunks = self.store.all_chunks(self.record)
        texts = [Chunk(c.position, c.text, c.heading, c.page, c.tokens).embedding_text() for c in chunks]
        vectors = e.encode(texts, progress=progress)
        self.record = self.store.replace_embeddings(self.record, e.name, e.dim, [c.id for c in chunks], vectors)
        return len(chunks)


def knowledge_store(db: str | None = None) -> KnowledgeStore:
    return KnowledgeStore(open_database(db))


def open_base(name: str, db: str | None = None) -> Base:
    store = knowledge_store(db)
    return Base(store, store.get(name))


def create_base(name: str, *, embedder: str = DEFAULT_EMBEDDER, chunk_size: int = defaults.CHUNK_SIZE,
                overlap: int = defaults.OVERLAP, db: str | None = None) -> Base:
    """A new, empty knowledge base; chunks must fit what the embedder embeds whole."""
    e = load_embedder(canonical_name(embedder))
    if chunk_size > e.max_tokens:
        raise InvalidInputError(f"chunk size {chunk_size} exceeds what {e.name} embeds whole ({e.max_tokens} tokens)")
    store = knowledge_store(db)
    return Base(store, store.create(name, e.name, e.dim, chunk_size, overlap))
