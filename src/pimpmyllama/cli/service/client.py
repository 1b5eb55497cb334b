"""The client side of the service: find it (starting it once if needed), send one
request and replay what it prints. Standard library only: a warm `pml ask` imports
no model library.
"""

import fcntl
import os
import socket
import subprocess
import sys
import time
from typing import IO

from pimpmyllama import __version__
from pimpmyllama.cli.service import wire
from pimpmyllama.cli.service.place import Place, parse_keep_alive, service_env, service_place
from pimpmyllama.errors import PmlError

START_TIMEOUT = 120.0  # seconds a new service may take to listen before the command runs in-process
LOG_LIMIT = 1 << 20


def connect(place: Place) -> socket.socket | None:
    """A connection to the running service, or None when none listens (no socket, or
    a stale one left by a service that was killed)."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(place.socket))
        return conn
    except OSError:  # no socket, nobody listening (ECONNREFUSED), or not ours to reach
        conn.close()
        return None


def spawn(place: Place) -> subprocess.Popen:
    """A detached service process (`python -m pimpmyllama.cli.service`, what `pml service run`
    runs, without the rest of the CLI to import; its own session: a Ctrl-C at the terminal does
    not reach it), its output appended to the log (the previous megabyte kept as service.log.1)."""
    if place.log.exists() and place.log.stat().st_size > LOG_LIMIT:
        os.replace(place.log, place.log.with_name(place.log.name + ".1"))
    with open(place.log, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "pimpmyllama.cli.service"], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, start_new_session=True, close_fds=True)


# A service this process started before its CLI was imported (start_early), with the
# start lock it holds until that service listens.
_early: tuple[subprocess.Popen, IO] | None = None


def start_early() -> None:
    """Start the service now, if none runs and no other command is starting one: called
    by a one-shot command before it imports its CLI, so that the service's start (and its
    import of torch) runs beside the command's own start instead of after it."""
    global _early
    place = service_place()
    conn = connect(place)
    if conn is not None:
        conn.close()
        return
    lock = open(place.start_lock, "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # another command is starting it: connect_or_start waits for that one
        lock.close()
        return
    conn = connect(place)
    if conn is not None:
        conn.close()
        lock.close()
        return
    _early = (spawn(place), lock)


def _listening(place: Place, process: subprocess.Popen) -> socket.socket | None:
    """A connection to the service `process` once it listens; None if it exits first
    (it could not start, or another one had, meanwhile) or takes over START_TIMEOUT."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        conn = connect(place)
        if conn is not None:
            return conn
        if process.poll() is not None:
            return connect(place)
        time.sleep(0.01)
    return None


def connect_or_start(place: Place) -> socket.socket | None:
    """The running service, else one started now and waited for; None when it could
    not start (its log says why). Under the start lock, so concurrent first commands
    start one service between them."""
    global _early
    if _early is not None:  # started by this process already; the lock is released once it listens
        (process, lock), _early = _early, None
        with lock:
            return _listening(place, process)
    conn = connect(place)
    if conn is not None:
        return conn
    with open(place.start_lock, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        conn = connect(place)  # another command may have started it meanwhile
        if conn is not None:
            return conn
        return _listening(place, spawn(place))


def request_message(command: str, request: dict, terminal: dict) -> dict:
    return {"command": command, "request": request, "cwd": os.getcwd(), "env": service_env(),
            "version": __version__, "keep_alive": parse_keep_alive(os.environ.get("PML_KEEP_ALIVE")),
            "terminal": terminal}


def ask_service(command: str, request: dict, terminal: dict, start: bool = True) -> int | None:
    """Run `command` in the service and replay its output here; its exit code, or None
    when no service can answer (the caller runs the command in-process). A PmlError
    in the service is raised here with its message; a service that stops before the
    end of its answer is a PmlError too."""
    place = service_place()
    message = request_message(command, request, terminal)  # a bad PML_KEEP_ALIVE fails before any start
    conn = connect_or_start(place) if start else connect(place)
    if conn is None:
        return None
    with conn:
        try:
            wire.send(conn, message)
            for reply in wire.lines(conn):
                if "out" in reply:
                    sys.stdout.write(reply["out"])
                    sys.stdout.flush()
                elif "err" in reply:
                    sys.stderr.write(reply["err"])
                    sys.stderr.flush()
                elif "exit" in reply:
                    return int(reply["exit"])
                elif "error" in reply:
                    raise PmlError(reply["error"])
                elif "fallback" in reply:
                    return None
        except (ConnectionError, ValueError):
            pass
    raise PmlError(f"the pml service stopped before its answer was complete (its log: {place.log})")
