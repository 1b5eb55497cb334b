"""The service process: listens on the home's socket, answers one request at a time
(a request arriving while another runs, or while a model loads, waits its turn),
keeps engines and embedders loaded, and exits after `keep_alive` idle seconds.

Only the user who runs the service is answered: the socket is 0600 in a 0700 folder,
and each connection's peer is checked with SO_PEERCRED (another uid is refused).
Requests run the CLI's own command functions (`run_ask`, `run_search`) with a
terminal that renders for the client, so both paths print the same.
"""

import fcntl
import logging
import os
import socket
import struct
import threading
import time
import traceback
from pathlib import Path

from pimpmyllama import __version__
from pimpmyllama.cli.service import wire
from pimpmyllama.cli.service.place import Place, parse_keep_alive, service_env
from pimpmyllama.errors import PmlError

log = logging.getLogger("pimpmyllama.service")
READ_TIMEOUT = 10.0  # seconds a connected client has to send its request
FIRST_REQUEST_GRACE = 10.0  # seconds a new service waits for its first request, even with a shorter keep-alive


def peer_uid(conn: socket.socket) -> int | None:
    """The uid of the process at the other end (None where the system cannot tell)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i")))
    return uid


def _stamp(resolve) -> tuple | None:
    """Which copy of a model or adapter folder is there now: a re-import or a retrained
    adapter is written as a new folder (atomic rename), so its inode and time change."""
    try:
        info = Path(resolve()).stat()
    except Exception:  # an unresolvable reference fails in the load itself, with its own message
        return None
    return info.st_ino, info.st_mtime_ns


def _engine_key(build) -> tuple:
    from pimpmyllama.models.refs import resolve_adapter, resolve_model_folder, split_adapter

    p = build.parameters
    scaling = p.rope_scaling.model_dump_json() if p.rope_scaling else None
    files = ()
    if isinstance(build.from_, str):
        model, adapter = split_adapter(build.from_) if "+" in build.from_ else (build.from_, None)
        files = tuple(_stamp(lambda a=a: resolve_adapter(a)) for a in (adapter, build.adapter) if a)
        files = (_stamp(lambda: resolve_model_folder(model)[1]), *files)
    return (repr(build.from_), build.adapter, build.precision, scaling, p.num_ctx if scaling else None, files)


class Service:
    def __init__(self, place: Place, keep_alive: float | None):
        self.place = place
        self.keep_alive = keep_alive
        self.engines: dict[tuple, object] = {}
        self._listener: socket.socket | None = None
        self._run_lock = None
        self._stopping = False
        self.answered = 0  # requests run (ask, search), whatever their outcome
        self.env = service_env()  # the settings it answers with, fixed at its start

    # Lifecycle -------------------------------------------------------------------

    def bind(self) -> None:
        """Take the home's run lock and listen; a second service for one home is refused."""
        lock = open(self.place.run_lock, "a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise PmlError(f"a pml service already runs for this PML_HOME ({self.place.socket})") from None
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")  # who holds it, for `pml service status` and for tests
        lock.flush()
        self._run_lock = lock
        # Bound under a temporary name, made private, then renamed over the final one: a
        # client never sees a socket others could reach, and a stale one is replaced whole.
        temporary = self.place.socket.with_name(f".{self.place.socket.name}.{os.getpid()}")
        temporary.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(temporary))
        os.chmod(temporary, 0o600)
        listener.listen(64)
        os.replace(temporary, self.place.socket)
        self._listener = listener
        log.info("listening on %s (pid %d, keep alive %s)", self.place.socket, os.getpid(), self.keep_alive)

    def serve(self) -> None:
        """Answer requests until idle for `keep_alive` seconds or asked to stop."""
        last, first = time.monotonic(), True
        while not self._stopping:
            if self.keep_alive is None:
                self._listener.settimeout(None)
            else:
                # the command that started the service gets time to connect, whatever the keep-alive
                idle = max(self.keep_alive, FIRST_REQUEST_GRACE) if first else self.keep_alive
                remaining = last + idle - time.monotonic()
                if remaining <= 0:
                    break
                self._listener.settimeout(remaining)
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self._answer(conn)
            last, first = time.monotonic(), False
        self.close()

    def close(self) -> None:
        """Stop listening: the socket's name goes first (new clients start a new service),
        then the requests already queued on it are answered, then the run lock is released."""
        if self._listener is None:
            return
        # While this process holds the run lock no other service of the home can have
        # bound the name: it is this one's to remove.
        self.place.socket.unlink(missing_ok=True)
        self._listener.setblocking(False)
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                break
            conn.setblocking(True)
            self._answer(conn)
        self._listener.close()
        self._listener = None
        self._run_lock.close()
        log.info("stopped")

    # Requests ------------------------------------------------------------------------

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(READ_TIMEOUT)
                # The request is read before the peer is judged: a reply to a client whose
                # words were left unread could be lost to the connection's reset.
                message = next(wire.lines(conn), None)
                conn.settimeout(None)
                uid = peer_uid(conn)
                if uid is not None and uid != os.getuid():
                    log.warning("refused a connection from uid %d", uid)
                    wire.send(conn, {"error": f"the pml service of uid {os.getuid()} refuses a process of uid {uid}"})
                    return
                if message is not None:
                    self._run(conn, message)
            except (OSError, ValueError) as exc:  # the client went away: nothing to tell it
                log.info("client gone: %s", exc)
            except Exception:  # a request not of the wire's form: the service goes on
                log.error("bad request:\n%s", traceback.format_exc())

    def _run(self, conn: socket.socket, message: dict) -> None:
        from pimpmyllama.cli.terminal import remote_terminal

        command = message.get("command")
        log.info("%s requested", command)
        if command == "stop":
            self._stopping = True
            wire.send(conn, {"exit": 0})
            return
        if command == "status":
            wire.send(conn, {"out": f"pml service pid {os.getpid()} on {self.place.socket}, "
                                    f"{len(self.engines)} engine(s) loaded, {self.answered} request(s) answered\n"})
            wire.send(conn, {"exit": 0})
            return
        if message.get("version") != __version__ or message.get("env") != self.env:
            wire.send(conn, {"fallback": "this service runs another version or other settings"})
            return
        if "keep_alive" in message:
            self.keep_alive = message["keep_alive"]
        handler = self._handlers().get(command)
        if handler is None:
            wire.send(conn, {"error": f"the pml service does not know the command {command!r}"})
            return
        sending = threading.Lock()  # a progress bar's refresh thread writes too

        def send(stream: str):
            def write(text: str) -> None:
                with sending:
                    wire.send(conn, {stream: text})
            return write

        term = remote_terminal(message["terminal"], send("out"), send("err"))
        try:
            os.chdir(message["cwd"])  # relative paths (build files, --db) are the client's
        except OSError:
            wire.send(conn, {"fallback": f"the service cannot enter {message['cwd']}"})
            return
        started = time.perf_counter()
        self.answered += 1
        try:
            handler(message["request"], term)
        except PmlError as exc:
            wire.send(conn, {"error": str(exc)})
            return
        except ConnectionError:
            raise  # the client went away (Ctrl-C): _answer notes it
        except Exception as exc:  # a bug: its traceback goes to the log, its one line to the client
            log.error("request %s failed:\n%s", command, traceback.format_exc())
            wire.send(conn, {"error": f"the pml service failed: {type(exc).__name__}: {exc} "
                                      f"(its log: {self.place.log})"})
            return
        log.info("%s answered in %.3f s", command, time.perf_counter() - started)
        wire.send(conn, {"exit": 0})

    def _handlers(self) -> dict:
        from pimpmyllama.cli.chat import run_ask
        from pimpmyllama.cli.kb import run_search

        return {"ask": lambda request, term: run_ask(request, term, engine_for=self.engine_for),
                "kb_search": run_search}

    def engine_for(self, build, progress=None):
        """The build's engine, loaded on first use and kept (by model, adapter, precision,
        rope scaling, and the copy of the model's and adapter's folders on disk)."""
        from pimpmyllama.chat import opening

        key = _engine_key(build)
        if key not in self.engines:
            for stale in [k for k in self.engines if k[:-1] == key[:-1]]:  # an older copy of the same files
                del self.engines[stale]
            self.engines[key] = opening.load_build_engine(build, progress)
        return self.engines[key]


def preload() -> None:
    """What every request needs, imported once the socket listens and before the first
    request is read: the command that started the service sends it meanwhile, while
    that command imports its own CLI (its request waits on the socket)."""
    from pimpmyllama.chat import opening  # noqa: F401  torch, the engine, the stores
    from pimpmyllama.generation import kernels

    kernels.load()


def run_service(place: Place) -> None:
    """The body of `pml service run`: bind, import, serve, exit when idle."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s pml-service %(process)d %(message)s")
    service = Service(place, parse_keep_alive(os.environ.get("PML_KEEP_ALIVE")))
    service.bind()
    try:
        preload()
        service.serve()
    finally:
        service.close()
