"""All-or-nothing writes: an error, a Ctrl-C or a kill never leaves half an artifact.

Artifacts are written into a hidden temporary sibling and renamed into place only
once complete (a rename within one directory is atomic on POSIX). A temporary
left behind by a killed process is recognised by its owner's pid and swept.
"""

import fcntl
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

_TMP_PREFIX = ".tmp-"


def _temp_sibling(final: Path) -> Path:
    return final.parent / f"{_TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}-{final.name}"


def _fsync_tree(path: Path) -> None:
    for root, _dirs, files in os.walk(path):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                os.fsync(f.fileno())
    _fsync_dir(path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_dir(final: Path, *, replace: bool = False,
               publish: Callable[[Callable[[], None]], None] | None = None) -> Iterator[Path]:
    """Yield an empty temporary folder that becomes `final` when the block succeeds.

    `publish`, if given, is handed the final rename to run (under a lock, after a
    last check of its own); without it the rename runs at once.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(final.parent)
    tmp = _temp_sibling(final)
    tmp.mkdir()

    def rename() -> None:
        if final.exists() or final.is_symlink():
            if not replace:
                raise FileExistsError(final)
            # Move the old one aside first so that `final` is never missing a file.
            old = _temp_sibling(final)
            os.rename(final, old)
            os.rename(tmp, final)
            if old.is_symlink():
                old.unlink()
            else:
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
        _fsync_dir(final.parent)

    try:
        yield tmp
        _fsync_tree(tmp)
        (publish or (lambda run: run()))(rename)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_file(final: Path) -> Iterator[Path]:
    """Yield a temporary path to write a file at; it becomes `final` (replacing any
    file there) only when the block succeeds, and is removed otherwise."""
    final.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(final.parent)
    tmp = _temp_sibling(final)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, final)
        _fsync_dir(final.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_dir_atomic(path: Path) -> None:
    """Rename, then delete: a crash mid-delete leaves a hidden temporary (swept
    later), never half of an artifact under its real name."""
    doomed = _temp_sibling(path)
    os.rename(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_temps(folder: Path) -> list[Path]:
    """Remove temporaries whose writer process is gone (killed mid-write)."""
    removed = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        if not entry.name.startswith(_TMP_PREFIX):
            continue
        try:
            pid = int(entry.name[len(_TMP_PREFIX):].split("-", 1)[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed



@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (created if absent), across processes."""
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
