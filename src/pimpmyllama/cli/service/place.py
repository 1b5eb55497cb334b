"""Where a `PML_HOME`'s service lives and how long it stays: standard library only.

The socket is `$PML_HOME/service/pml.sock` (the folder mode 0700, the socket 0600);
when that path is too long for a Unix socket address (108 bytes on Linux), it is
`/tmp/pml-UID/HASH.sock` instead, in a folder of the same mode, HASH naming the home.
"""

import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from pimpmyllama.errors import InvalidInputError, PmlError
from pimpmyllama.paths import pml_home

DEFAULT_KEEP_ALIVE = 300.0  # seconds, as Ollama's OLLAMA_KEEP_ALIVE default of 5m
_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes with its final NUL; keep a margin
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}


def service_disabled() -> bool:
    """PML_NO_SERVICE=1 (or true/yes): every command answers in its own process."""
    return os.environ.get("PML_NO_SERVICE", "").strip().lower() in ("1", "true", "yes")


def parse_keep_alive(text: str | None) -> float | None:
    """Seconds the service stays after its last request: "300", "90s", "5m", "1h";
    "0" stops it after each request; a negative value keeps it until stopped (None)."""
    if text is None or not text.strip():
        return DEFAULT_KEEP_ALIVE
    match = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not match:
        raise InvalidInputError(f"PML_KEEP_ALIVE={text!r} is not a duration (e.g. 300, 90s, 5m, 1h; -1: forever)")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    return None if seconds < 0 else seconds


def _private_folder(path: Path) -> Path:
    """`path` created with mode 0700, refused when another user owns it or others may enter it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise PmlError(f"{path} is not a folder of this user: the pml service cannot use it")
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


@dataclass(frozen=True)
class Place:
    folder: Path  # locks and log, under PML_HOME
    socket: Path

    @property
    def start_lock(self) -> Path:
        """Held by a client while it starts the service: two first commands start one."""
        return self.folder / "start.lock"

    @property
    def run_lock(self) -> Path:
        """Held by the running service for its whole life: a second one refuses to run."""
        return self.folder / "run.lock"

    @property
    def log(self) -> Path:
        return self.folder / "service.log"


def service_place() -> Place:
    home = pml_home().resolve()
    folder = _private_folder(home / "service")
    socket = folder / "pml.sock"
    if len(os.fsencode(socket)) > _MAX_SOCKET_PATH:
        digest = hashlib.sha256(os.fsencode(home)).hexdigest()[:16]
        socket = _private_folder(Path("/tmp") / f"pml-{os.getuid()}") / f"{digest}.sock"
    return Place(folder, socket)


def service_env() -> dict[str, str]:
    """The settings a service must share with a client to answer for it (the
    database, the home...): PML_* variables but those about the service itself."""
    return {k: v for k, v in os.environ.items()
            if k.startswith("PML_") and k not in ("PML_KEEP_ALIVE", "PML_NO_SERVICE")}
