import os
import signal
import threading

import pytest

from pimpmyllama.cli.service.place import service_place


@pytest.fixture
def service_on(pml_home, monkeypatch):
    """The background service turned back on (conftest turns it off for every test);
    any service process started under this home is killed at the end."""
    monkeypatch.delenv("PML_NO_SERVICE", raising=False)
    yield pml_home
    lock = pml_home / "service" / "run.lock"
    pid = lock.read_text().strip() if lock.exists() else ""
    if pid and int(pid) != os.getpid():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def service_thread(service_on):
    """A service in a thread of this process (so the fakes and monkeypatches of a test
    reach it); stopped at the end."""
    from pimpmyllama.cli.service.server import Service

    service = Service(service_place(), keep_alive=None)
    service.bind()
    thread = threading.Thread(target=service.serve, daemon=True)
    thread.start()
    yield service
    service._stopping = True
    from pimpmyllama.cli.service.client import ask_service

    try:
        ask_service("stop", {}, {}, start=False)
    except Exception:
        pass
    thread.join(10)
    assert not thread.is_alive()

