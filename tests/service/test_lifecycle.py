"""The service's life as separate processes: started once, replaced when stale,
stopped when idle, and a death mid-request told in one line with nothing written."""

import os
import signal
import subprocess
import sys
import time

from cli_run import assert_one_line_error

from pimpmyllama.cli.service.place import service_place


def wait_until(condition, timeout=30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def pml(*args, env=None):
    return subprocess.Popen([sys.executable, "-m", "pimpmyllama", *args], env={**os.environ, **(env or {})},
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def service_pid(home) -> int:
    return int((home / "service" / "run.lock").read_text())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a child of this test process that exited stays a zombie until reaped
    state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] if os.path.exists(f"/proc/{pid}/stat") else "X"
    return state not in ("Z", "X")


def test_two_first_commands_start_one_service(service_on):
    first, second = pml("service", "start"), pml("service", "start")
    outputs = [p.communicate(timeout=120) for p in (first, second)]
    pid = service_pid(service_on)
    assert [o for o, _ in outputs] == [f"pml service pid {pid} on {service_place().socket}, 0 engine(s) loaded, "
                                       f"0 request(s) answered\n"] * 2, outputs
    assert (service_on / "service" / "service.log").read_text().count("listening on") == 1
    assert oct(os.stat(service_place().socket).st_mode & 0o777) == "0o600"
    assert oct(os.stat(service_on / "service").st_mode & 0o777) == "0o700"


def test_a_stale_socket_from_a_killed_service_is_replaced(service_on):
    assert pml("service", "start").communicate(timeout=120)[1] == ""
    killed = service_pid(service_on)
    os.kill(killed, signal.SIGKILL)
    assert wait_until(lambda: not alive(killed))
    assert service_place().socket.exists()  # left behind, refusing connections
    assert pml("service", "status").communicate(timeout=60)[0] == "no pml service runs for this PML_HOME\n"
    out, err = pml("service", "start").communicate(timeout=120)
    assert err == "" and service_pid(service_on) != killed
    assert out.startswith(f"pml service pid {service_pid(service_on)} ")


def test_the_service_stops_after_its_idle_time(service_on):
    assert pml("service", "start", env={"PML_KEEP_ALIVE": "1s"}).communicate(timeout=120)[1] == ""
    pid = service_pid(service_on)
    assert alive(pid)
    assert wait_until(lambda: not alive(pid), timeout=30)
    assert not service_place().socket.exists()
    assert pml("service", "status").communicate(timeout=60)[0] == "no pml service runs for this PML_HOME\n"


def test_stop(service_on):
    assert pml("service", "start").communicate(timeout=120)[1] == ""
    pid = service_pid(service_on)
    assert pml("service", "stop").communicate(timeout=60) == ("stopped the pml service\n", "")
    assert wait_until(lambda: not alive(pid))
    assert pml("service", "stop").communicate(timeout=60) == ("no pml service runs for this PML_HOME\n", "")


def test_a_service_killed_mid_request_is_one_line_and_writes_nothing(service_on, stored_tiny):
    log = service_on / "service" / "service.log"
    asking = pml("ask", "--session", "s", "tiny", "hello")
    assert wait_until(lambda: log.exists() and "ask requested" in log.read_text(), timeout=60)
    os.kill(service_pid(service_on), signal.SIGKILL)  # while it loads torch and the model
    _, err = asking.communicate(timeout=60)
    result = subprocess.CompletedProcess(asking.args, asking.returncode, "", err)
    assert_one_line_error(result, "the pml service stopped before its answer was complete")
    from pimpmyllama.memory.sessions import SessionStore
    from pimpmyllama.storage.db import open_database

    assert SessionStore(open_database()).find("s") is None


def test_keep_alive_zero_answers_the_starting_command_then_stops(service_on, stored_tiny):
    asking = pml("ask", "tiny", "hello", env={"PML_KEEP_ALIVE": "0"})
    out, err = asking.communicate(timeout=120)
    assert asking.returncode == 0, err
    log = (service_on / "service" / "service.log").read_text()
    assert "ask answered in" in log
    assert wait_until(lambda: "stopped" in (service_on / "service" / "service.log").read_text(), timeout=30)
    assert not service_place().socket.exists()


def test_two_first_asks_start_one_service_and_both_answer(service_on, stored_tiny):
    """Each command starts the service before importing its CLI (cli/launch.py): the
    start lock still lets one of them start it, and the other waits for that one."""
    asking = [pml("ask", "tiny", "hello"), pml("ask", "tiny", "hi")]
    outputs = [p.communicate(timeout=120) for p in asking]
    assert [p.returncode for p in asking] == [0, 0], outputs
    log = (service_on / "service" / "service.log").read_text()
    assert log.count("listening on") == 1 and log.count("ask answered in") == 2


def test_only_a_one_shot_command_starts_the_service_early(monkeypatch):
    from pimpmyllama.cli.launch import goes_to_the_service as early

    monkeypatch.delenv("PML_NO_SERVICE", raising=False)
    assert early(["ask", "tiny", "hello"]) and early(["kb", "search", "town", "when?"])
    assert not early(["ask", "--help"]) and not early(["ask", "--no-service", "tiny", "x"])
    assert not early(["chat", "tiny"]) and not early(["kb", "add", "town", "docs"]) and not early([])
    monkeypatch.setenv("PML_NO_SERVICE", "1")
    assert not early(["ask", "tiny", "hello"])
