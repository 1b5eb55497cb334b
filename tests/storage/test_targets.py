"""Which databases `--db` / PML_DATABASE_URL accept, and the one line for the rest:
nothing is created for a target that is refused, and a server that never answers
ends in an error within the timeout."""

import os
import socket
import threading
import time

import pytest

from pimpmyllama.errors import PmlError
from pimpmyllama.storage.db import open_database


def refused(target, *fragments):
    with pytest.raises(PmlError) as caught:
        open_database(target)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.mark.parametrize("target, fragment", [
    ("garbage", "not a database"),
    ("postgress://u@localhost/db", "unsupported database URL scheme 'postgress'"),
    ("mysql://u@localhost/db", "unsupported database URL scheme 'mysql'"),
    ("postgresql://u:%zz@localhost/db", "invalid PostgreSQL URL"),
])
def test_what_is_not_a_database_is_refused_and_nothing_is_created(tmp_path, monkeypatch, target, fragment):
    monkeypatch.chdir(tmp_path)
    refused(target, fragment)
    assert os.listdir(tmp_path) == []


def test_a_sqlite_file_in_a_missing_folder(tmp_path):
    refused(str(tmp_path / "nonexistent" / "x.db"), "folder", "does not exist")
    assert not (tmp_path / "nonexistent").exists()


def test_the_environment_variable_is_checked_the_same_way(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PML_DATABASE_URL", "postgresql://u:%zz@localhost/db")
    refused(None, "invalid PostgreSQL URL", "PML_DATABASE_URL")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", ["a.db", "a.sqlite", "a.sqlite3"])
def test_sqlite_paths_and_urls_are_accepted(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    open_database(name).close()
    open_database(f"sqlite:///{tmp_path / ('url-' + name)}").close()
    assert (tmp_path / name).is_file() and (tmp_path / f"url-{name}").is_file()


def test_an_existing_sqlite_file_without_extension_is_accepted(tmp_path):
    path = tmp_path / "store.db"
    open_database(path).close()
    plain = tmp_path / "plainname"
    plain.write_bytes(path.read_bytes())
    db = open_database(str(plain))
    assert db.query("SELECT count(*) AS n FROM sessions") == [{"n": 0}]
    db.close()


def test_a_corrupt_database_file_is_one_line(tmp_path):
    path = tmp_path / "pml.db"
    garbage = os.urandom(4096)
    path.write_bytes(b"not sqlite at all" + garbage)
    refused(path, str(path), "not an SQLite database")
    assert path.read_bytes() == b"not sqlite at all" + garbage


def test_pml_home_that_is_a_file_is_one_line(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.write_text("x")
    monkeypatch.setenv("PML_HOME", str(home))
    refused(None, f"PML_HOME {home}", "not a folder")
    assert home.read_text() == "x"


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_a_server_that_never_answers_times_out(silent_server, monkeypatch):
    monkeypatch.setenv("PML_DB_CONNECT_TIMEOUT", "2")
    started = time.monotonic()
    refused(f"postgresql://u@127.0.0.1:{silent_server}/db?sslmode=disable", "cannot connect to PostgreSQL",
            "PML_DB_CONNECT_TIMEOUT")
    assert time.monotonic() - started < 10


def test_timeouts_must_be_numbers(monkeypatch, tmp_path):
    monkeypatch.setenv("PML_DB_CONNECT_TIMEOUT", "soon")
    refused("postgresql://u@127.0.0.1:1/db", "PML_DB_CONNECT_TIMEOUT must be a number of seconds above 0")


def test_a_statement_past_the_timeout_is_one_line(pg_url, monkeypatch):
    monkeypatch.setenv("PML_DB_STATEMENT_TIMEOUT", "0.5")
    db = open_database(pg_url)
    try:
        with pytest.raises(PmlError, match="PML_DB_STATEMENT_TIMEOUT"):
            db.query("SELECT pg_sleep(3)")
        assert db.query("SELECT 1 AS one") == [{"one": 1}]  # the connection is still usable
    finally:
        db.close()
