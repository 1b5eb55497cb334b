"""pml kb create|add|list|show|rm|search|reindex|eval"""

import json
from pathlib import Path

import typer
from rich.table import Table

from pimpmyllama.cli.app import new_app
from pimpmyllama.cli import device as device_option
from pimpmyllama.cli.console import cells, err, escape, human_size, out, progress_reporter
from pimpmyllama.cli.oneshot import NO_SERVICE, one_shot
from pimpmyllama.cli.terminal import Terminal
from pimpmyllama.knowledge import defaults

app = new_app("Knowledge bases (RAG): documents the model can look things up in.")

DB = typer.Option(None, "--db", help="database URL (default: PML_DATABASE_URL, else the SQLite file in PML_HOME)")


def _store(db: str | None):
    from pimpmyllama.knowledge.bases import knowledge_store

    return knowledge_store(db)


def _embedder(name: str):
    from pimpmyllama.knowledge.embedders import load_embedder

    return load_embedder(name)


@app.command("create")
def create(
    name: str = typer.Argument(..., help="name of the new knowledge base"),
    embedder: str = typer.Option("all-minilm-l6-v2", "--embedder", help="the bundled default or a sentence-transformers folder"),
    chunk_size: int = typer.Option(defaults.CHUNK_SIZE, "--chunk-size", help="chunk size, in embedder tokens"),
    overlap: int = typer.Option(defaults.OVERLAP, "--overlap", help="tokens shared by consecutive chunks"),
    db: str = DB,
):
    """Create an empty knowledge base."""
    from pimpmyllama.knowledge.bases import create_base

    kb = create_base(name, embedder=embedder, chunk_size=chunk_size, overlap=overlap, db=db).record
    out.print(f"created knowledge base [bold]{escape(kb.name)}[/] ({escape(kb.embedder)}, {kb.dim} dims, "
              f"chunks of {chunk_size} tokens)")


@app.command("add")
def add(
    name: str = typer.Argument(..., help="knowledge base"),
    paths: list[str] = typer.Argument(..., help="files, folders or globs (.txt .md .html .pdf .docx .json .jsonl)"),
    batch_size: int = typer.Option(256, "--batch-size", help="chunks embedded per batch"),
    db: str = DB,
    device: str = device_option.DEVICE,
):
    """Add or update documents (unchanged files are skipped)."""
    device_option.use(device)
    from pimpmyllama.knowledge.bases import open_base

    base = open_base(name, db)
    with progress_reporter(f"Adding to {name}") as report:
        result = base.add(paths, progress=report, batch_chunks=batch_size,
                          warn=lambda m: err.print(f"[yellow]warning:[/] skipped {escape(m)}", soft_wrap=True))
    out.print(
        f"{len(result.added)} added, {len(result.updated)} updated, {len(result.unchanged)} unchanged, "
        f"{len(result.skipped)} skipped · {result.chunks} chunks in {result.seconds:.1f}s"
    )


@app.command("list")
def list_(db: str = DB):
    """List knowledge bases."""
    table = Table("NAME", "DOCUMENTS", "CHUNKS", "EMBEDDER", "CHUNK SIZE", "UPDATED", box=None)
    for row in _store(db).summaries():
        table.add_row(*cells(row.name, row.documents, row.chunks, Path(row.embedder).name,
                             f"{row.chunk_size}/{row.overlap}", row.updated_at))
    out.print(table)


@app.command("show")
def show(name: str = typer.Argument(..., help="knowledge base"), db: str = DB):
    """A knowledge base's settings, size and documents."""
    store = _store(db)
    kb = store.get(name)
    stats = store.stats(kb)
    out.print(f"[bold]{escape(kb.name)}[/] · embedder {escape(kb.embedder)} ({kb.dim} dims) · chunks of {kb.chunk_size} tokens, "
              f"overlap {kb.overlap}")
    out.print(f"{stats.documents} documents · {stats.chunks} chunks · {stats.tokens} tokens · "
              f"{human_size(stats.bytes)} of source files")
    table = Table("SOURCE", "CHUNKS", "SIZE", "ADDED", box=None)
    for doc in store.documents(kb):
        table.add_row(*cells(doc.source, doc.chunk_count, human_size(doc.bytes), doc.added_at))
    out.print(table)


@app.command("rm")
def rm(
    name: str = typer.Argument(..., help="knowledge base"),
    source: str = typer.Argument(None, help="remove only this document (a path or a glob)"),
    db: str = DB,
):
    """Remove a knowledge base, or some of its documents."""
    store = _store(db)
    if source is None:
        store.remove(name)
        out.print(f"removed knowledge base {name}", markup=False)
        return
    removed = store.remove_documents(store.get(name), source)
    if not removed:
        from pimpmyllama.errors import NotFoundError

        raise NotFoundError(f"no document of {name!r} matches {source!r}")
    out.print(f"removed {len(removed)} document(s)")


@app.command("search")
def search(
    name: str = typer.Argument(..., help="knowledge base"),
    query: str = typer.Argument(..., help="what to look for"),
    k: int = typer.Option(defaults.TOP_K, "-k", help="how many passages"),
    filters: list[str] = typer.Option(None, "--filter", help="FIELD=VALUE (source, title, heading: globs; page: N or N-M)"),
    mode: str = typer.Option("hybrid", "--mode", help="hybrid, dense or keyword"),
    mmr: bool = typer.Option(False, "--mmr", help="diversify the passages (maximal marginal relevance)"),
    embedder: str = typer.Option(None, "--embedder", help="embed the query with this embedder (default: the base's)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    db: str = DB,
    no_service: bool = NO_SERVICE,
    device: str = device_option.DEVICE,
):
    """Print the passages nearest a query, with source, position and score. The
    embedder stays loaded in a background service between calls (see docs/serving.md);
    with --device, in this process."""
    device_option.use(device)
    from pimpmyllama.text import check_text

    check_text(query, "the query")  # before the database opens and the embedder loads
    request = {"name": name, "query": query, "k": k, "filters": filters or [], "mode": mode, "mmr": mmr,
               "embedder": embedder, "json": as_json, "db": db}
    one_shot("kb_search", request, no_service or device is not None, run_search)


def run_search(request: dict, term: Terminal) -> None:
    """`pml kb search` once its arguments are read, printing on `term`."""
    from pimpmyllama.knowledge.bases import open_base

    r = request
    hits = open_base(r["name"], r["db"]).search(r["query"], r["k"], mode=r["mode"], filters=r["filters"],
                                                mmr=r["mmr"], embedder=r["embedder"])
    if r["json"]:
        term.write(json.dumps([
            {"source": h.chunk.source, "position": h.chunk.position, "heading": h.chunk.heading,
             "page": h.chunk.page, "score": h.score, "similarity": h.similarity, "text": h.chunk.text}
            for h in hits], ensure_ascii=False) + "\n")
        return
    for i, hit in enumerate(hits, start=1):
        c = hit.chunk
        where = f"{c.source}#{c.position}" + (f" p.{c.page}" if c.page else "") + (f" · {c.heading}" if c.heading else "")
        sim = f" · cosine {hit.similarity:.3f}" if hit.similarity is not None else ""
        term.out.print(f"[bold]\\[{i}][/] {escape(where)} [dim](score {hit.score:.4f}{sim})[/]", soft_wrap=True)
        term.out.print(c.text, markup=False, soft_wrap=True)
        term.out.print()


@app.command("reindex")
def reindex(
    name: str = typer.Argument(..., help="knowledge base"),
    embedder: str = typer.Option(None, "--embedder", help="embed again with this embedder (default: the base's own)"),
    db: str = DB,
):
    """Embed every chunk again (e.g. with another embedder); the base stays usable until it is done."""
    from pimpmyllama.knowledge.bases import open_base

    base = open_base(name, db)
    with progress_reporter(f"Re-embedding {name}") as report:
        count = base.reindex(embedder, report)
    kb = base.record
    out.print(f"re-indexed {count} chunks of {name} with {kb.embedder} ({kb.dim} dims)", markup=False)


@app.command("eval")
def eval_(
    name: str = typer.Argument(..., help="knowledge base"),
    questions: Path = typer.Argument(..., help="JSONL: {question, source and/or answer} per line"),
    k: int = typer.Option(defaults.TOP_K, "-k", help="passages retrieved per question"),
    mode: str = typer.Option("hybrid", "--mode", help="hybrid, dense or keyword"),
    db: str = DB,
    device: str = device_option.DEVICE,
):
    """Recall@k and MRR of retrieval on a question set, to tune chunking and k."""
    device_option.use(device)
    from pimpmyllama.knowledge.evaluation import evaluate, read_questions

    store = _store(db)
    kb = store.get(name)
    report = evaluate(store, kb, _embedder(kb.embedder), read_questions(questions), k, mode)
    out.print(f"{report.questions} questions · recall@{report.k} {report.recall:.3f} · MRR@{report.k} {report.mrr:.3f}")
    for question in report.misses[:10]:
        out.print(f"[dim]missed:[/] {escape(question)}", highlight=False)
