"""A document uploaded into a knowledge base (`POST /pml/knowledge/{name}/documents`).

The file is kept under `$PML_HOME/uploads/{base}/` (a knowledge base cites its
documents by path) and ingested as `pml kb add` would. All or nothing: a file of an
unsupported type, too big, or that cannot be read is refused before anything is
written, and if the ingestion fails the knowledge base, the folder and a previous
upload of the same name are left as they were (a base created for it is removed)."""

import os
import threading
import uuid
from pathlib import Path, PurePath

from pimpmyllama.errors import PmlError
from pimpmyllama.knowledge.bases import Base, create_base, knowledge_store
from pimpmyllama.knowledge.loaders import LOADERS, load_document
from pimpmyllama.names import check_name
from pimpmyllama.paths import uploads_dir
from pimpmyllama.serving.errors import ApiError, naming

UPLOAD_MAX_BYTES = 20_000_000
_one_at_a_time = threading.Lock()  # two uploads of one name must not swap each other's backups


def upload_name(filename: str | None) -> str:
    """The file's own name (a client's folders are dropped); refused if it cannot be one."""
    name = PurePath((filename or "").replace("\\", "/")).name
    if not name or name.startswith(".") or any(ord(ch) < 32 for ch in name):
        raise ApiError(400, f"{filename!r} is not a file name that can be stored", param="file")
    return name


def check_upload(name: str, size: int) -> None:
    if PurePath(name).suffix.lower() not in LOADERS:
        raise ApiError(415, f"{name}: unsupported file type (supported: {', '.join(sorted(LOADERS))})",
                       param="file", code="unsupported_file_type")
    if size > UPLOAD_MAX_BYTES:
        raise ApiError(413, f"{name}: larger than the {UPLOAD_MAX_BYTES // 1_000_000} MB upload limit",
                       param="file", code="file_too_large")


def upload_document(base_name: str, filename: str | None, data: bytes) -> dict:
    """Store and ingest one uploaded file; returns what happened to it and the chunks it made."""
    with naming("name"):
        check_name(base_name, "knowledge base")
    name = upload_name(filename)
    check_upload(name, len(data))
    folder = uploads_dir() / base_name
    folder.mkdir(exist_ok=True)
    final = folder / name
    staged = folder / f".tmp-{uuid.uuid4().hex[:8]}{final.suffix}"  # the loader reads the type from the suffix
    with _one_at_a_time:
        try:
            staged.write_bytes(data)
            _checked_read(staged, name)
            return _ingest_in_place(base_name, staged, final)
        finally:
            staged.unlink(missing_ok=True)


def _checked_read(path: Path, name: str) -> None:
    try:
        load_document(path)
    except PmlError as exc:  # SkippedFile: empty, no text, cannot be parsed
        raise ApiError(400, str(exc).replace(str(path), name), param="file", code="unreadable_file") from None


def _ingest_in_place(base_name: str, staged: Path, final: Path) -> dict:
    store = knowledge_store()
    record = store.find(base_name)
    base = Base(store, record) if record else create_base(base_name)
    backup = final.with_name(f".old-{uuid.uuid4().hex[:8]}-{final.name}")
    if final.exists():
        os.replace(final, backup)
    os.replace(staged, final)
    try:
        report = base.add([str(final)])
        if report.skipped:
            raise ApiError(400, report.skipped[0].replace(str(final), final.name), param="file",
                           code="unreadable_file")
    except BaseException:
        if backup.exists():
            os.replace(backup, final)
        else:
            final.unlink(missing_ok=True)
        if record is None:
            store.remove(base_name)
        raise
    backup.unlink(missing_ok=True)
    status = next(s for s in ("added", "updated", "unchanged") if getattr(report, s))
    source = str(final.resolve())
    stored = next(d for d in store.documents(base.record) if d.source == source)
    return {"knowledge_base": base_name, "document": final.name, "source": source, "status": status,
            "chunks": stored.chunk_count}
