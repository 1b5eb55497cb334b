"""`pml ask` and `pml kb search` through a service running in this process's thread:
the same output as in-process, the same stored turns, the same one-line errors."""

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from typer.testing import CliRunner

from fakes import FakeEngine, patch_load_engine
from seed_data import QUERY, write_seed

from pimpmyllama.cli.service import server
from pimpmyllama.cli.service.client import ask_service
from pimpmyllama.errors import PmlError
from pimpmyllama.memory.sessions import SessionStore
from pimpmyllama.storage.db import open_database


def client(*args):
    """`pml ARGS` in its own process (with `-X ...` options first, for Python)."""
    options = [a for a in args[:2] if a.startswith("-X") or a == "importtime"]
    env = {k: v for k, v in os.environ.items() if k != "PML_NO_SERVICE"}
    return subprocess.Popen([sys.executable, *options, "-m", "pimpmyllama", *args[len(options):]], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def pml(*args):
    from pimpmyllama.cli.main import app

    return CliRunner().invoke(app, list(args))


@pytest.fixture
def fake(monkeypatch, stored_tiny, tiny_model):
    return patch_load_engine(monkeypatch, FakeEngine(tiny_model))


def test_ask_prints_and_stores_what_it_does_in_process(service_thread, fake):
    fake.replies.extend(["Paris is [bold]the[/] capital."] * 4)
    here = pml("ask", "--no-service", "--session", "a", "tiny", "Capital of France?")
    there = pml("ask", "--session", "b", "tiny", "Capital of France?")
    assert here.exit_code == there.exit_code == 0, there.output
    assert there.stdout == here.stdout == "Paris is [bold]the[/] capital.\n"
    assert there.stderr == here.stderr  # the "Loading" bar's trace included
    assert service_thread.engines  # the service answered, with its own kept engine
    here = json.loads(pml("ask", "--no-service", "--json", "--show-context", "tiny", "Again?").stdout)
    there = json.loads(pml("ask", "--json", "--show-context", "tiny", "Again?").stdout)
    assert there == here and there["reply"] == "Paris is [bold]the[/] capital."
    assert there["context"]["sections"][0]["name"] == "system"
    sessions = SessionStore(open_database())
    turns = {name: [(t.user, t.reply, t.status) for t in sessions.turns(sessions.find(name))] for name in ("a", "b")}
    assert turns["a"] == turns["b"] == [("Capital of France?", "Paris is [bold]the[/] capital.", turns["a"][0][2])]


def test_an_error_in_the_service_is_the_same_one_line(service_thread, fake):
    here = pml("ask", "--no-service", "nobuild", "hello")
    there = pml("ask", "nobuild", "hello")
    assert here.exit_code == there.exit_code == 2
    # the same bytes (a blank line where the "Loading" bar was, off a terminal), then the one line
    assert there.stderr == here.stderr and there.stderr.strip().startswith("error: unknown build or model 'nobuild'")
    assert there.stderr.strip().count("\n") == 0 and there.stdout == ""
    assert not service_thread.engines


def test_kb_search_through_the_service(service_thread, tmp_path):
    assert pml("kb", "create", "seed").exit_code == 0
    assert pml("kb", "add", "seed", str(write_seed(tmp_path / "seed"))).exit_code == 0
    for extra in ([], ["--json", "--filter", "source=pi*"]):
        here = pml("kb", "search", "--no-service", "seed", QUERY, "-k", "2", *extra)
        there = pml("kb", "search", "seed", QUERY, "-k", "2", *extra)
        assert there.exit_code == 0 and there.stdout == here.stdout
    assert [h["source"].rsplit("/", 1)[1] for h in json.loads(there.stdout)] == ["piscine.txt"]
    assert pml("kb", "search", "nope", "x").stderr == "error: unknown knowledge base 'nope' (known: seed; create one with `pml kb create`)\n"
    assert service_thread.answered == 3


def test_another_users_process_is_refused(service_thread, fake, monkeypatch):
    monkeypatch.setattr(server, "peer_uid", lambda conn: os.getuid() + 1)
    with pytest.raises(PmlError, match=f"refuses a process of uid {os.getuid() + 1}"):
        ask_service("status", {}, {}, start=False)
    result = pml("ask", "tiny", "hello")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "refuses a process of uid" in result.stderr
    assert fake.prompts == []  # nothing ran for it


def test_a_request_while_the_model_loads_waits(service_thread, fake, monkeypatch):
    from pimpmyllama.chat import opening

    loading = threading.Event()
    real = opening.load_build_engine

    def slow_load(build, progress=None):
        loading.set()
        time.sleep(0.5)
        return real(build, progress)

    monkeypatch.setattr(opening, "load_build_engine", slow_load)
    fake.replies.extend(["first", "second"])
    first = client("ask", "tiny", "one?")
    assert loading.wait(30)
    second = client("ask", "tiny", "two?")  # sent while the first request is still loading
    assert first.communicate(timeout=60) == ("first\n", "\n")  # stderr: as in-process, off a terminal
    assert second.communicate(timeout=60) == ("second\n", "\n")
    assert len(service_thread.engines) == 1


def test_a_warm_ask_imports_no_model_library(service_thread, fake):
    fake.replies.append("Paris.")
    stdout, stderr = client("-X", "importtime", "ask", "tiny", "Capital?").communicate(timeout=60)
    assert stdout == "Paris.\n", stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")}
    heavy = {"torch", "transformers", "sentence_transformers", "numpy", "pimpmyllama.generation.engine",
             "pimpmyllama.chat.conversation"}
    assert "pimpmyllama.cli.service.client" in imported
    assert heavy & imported == set()


def test_a_service_that_cannot_start_leaves_the_command_in_process(service_on, fake, monkeypatch):
    from pimpmyllama.cli.service import client

    monkeypatch.setattr(client, "spawn", lambda place: subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"]))
    fake.replies.append("in-process")
    result = pml("ask", "tiny", "hello")
    assert result.exit_code == 0 and result.stdout == "in-process\n"


def test_a_client_with_other_settings_answers_itself(service_thread, fake, monkeypatch):
    monkeypatch.setenv("PML_DB_CONNECT_TIMEOUT", "5")  # not what the service started with
    fake.replies.append("in-process")
    result = pml("ask", "tiny", "hello")
    assert result.exit_code == 0 and result.stdout == "in-process\n"
    assert service_thread.answered == 0


def test_a_model_imported_again_is_loaded_again(service_thread, fake, tiny_model, monkeypatch):
    from pimpmyllama.chat import opening
    from pimpmyllama.models.store import ModelStore

    loads = []
    real = opening.load_build_engine
    monkeypatch.setattr(opening, "load_build_engine", lambda build, progress=None: loads.append(1) or real(build))
    fake.replies.extend(["one", "two", "three"])
    assert [pml("ask", "tiny", "q?").stdout for _ in range(2)] == ["one\n", "two\n"]
    assert len(loads) == 1
    ModelStore().import_model(tiny_model, "tiny", force=True)
    assert pml("ask", "tiny", "q?").stdout == "three\n"
    assert len(loads) == 2 and len(service_thread.engines) == 1  # the new copy's engine, in place of the old one's


def test_the_client_side_imports_no_model_library():
    # what a warm ask may import, whichever way its arguments go (a piped one-argument
    # ask checks whether the argument names a build)
    code = ("import sys, pimpmyllama.cli.main, pimpmyllama.prompting.refs, pimpmyllama.cli.service.client; "
            "print(sorted(m for m in ('torch', 'numpy', 'transformers', 'sentence_transformers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout == "[]\n", done.stderr


def test_ask_with_a_knowledge_base_and_a_style_sends_the_same_prompt(service_thread, fake, tmp_path):
    assert pml("kb", "create", "seed").exit_code == 0
    assert pml("kb", "add", "seed", str(write_seed(tmp_path / "seed"))).exit_code == 0
    fake.replies.extend(["La poste ouvre à 9h."] * 2)
    args = ["ask", "--kb", "seed", "--style", "brief", "--show-context", "tiny", QUERY]
    here, there = pml(*args, "--no-service"), pml(*args)
    assert there.exit_code == 0 and there.stdout == here.stdout
    assert there.stdout.startswith("La poste ouvre à 9h.\n") and "poste.txt" in there.stdout  # the sources
    assert fake.prompts[0] == fake.prompts[1] and "Le bureau de poste ouvre à 9h." in fake.prompts[1]
    assert "knowledge" in there.stderr and there.stderr == here.stderr  # the context table and usage
    assert service_thread.answered == 1


def test_a_malformed_request_leaves_the_service_answering(service_thread, monkeypatch):
    import socket

    for garbage in (b"not json\n", b"[1, 2]\n", b'{"command": "ask"}\n', b"\n"):
        with socket.socket(socket.AF_UNIX) as raw:
            raw.connect(str(service_thread.place.socket))
            raw.sendall(garbage)
            raw.recv(4096)
    monkeypatch.setenv("PML_DB_CONNECT_TIMEOUT", "5")  # other settings: status and stop still reach it
    result = pml("service", "status")
    assert result.stdout.startswith(f"pml service pid {os.getpid()} ") and "0 request(s) answered" in result.stdout
    assert pml("service", "stop").stdout == "stopped the pml service\n"
