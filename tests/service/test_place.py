"""Where the service listens and how long it stays."""

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pimpmyllama.cli.service.place import parse_keep_alive, service_place
from pimpmyllama.errors import InvalidInputError


def test_keep_alive_durations():
    assert [parse_keep_alive(t) for t in (None, "", "300", "90s", "5m", "1h", "0", " 2.5m ")] == [
        300.0, 300.0, 300.0, 90.0, 300.0, 3600.0, 0.0, 150.0]
    assert parse_keep_alive("-1") is None and parse_keep_alive("-5m") is None
    for bad in ("5 minutes", "m", "1d", "--1"):
        with pytest.raises(InvalidInputError, match="is not a duration"):
            parse_keep_alive(bad)


def test_a_bad_keep_alive_is_one_line(service_on, monkeypatch):
    from pimpmyllama.cli.main import app

    monkeypatch.setenv("PML_KEEP_ALIVE", "soon")
    result = CliRunner().invoke(app, ["kb", "search", "x", "y"])
    assert result.exit_code == 2 and result.stderr.startswith("error: PML_KEEP_ALIVE='soon' is not a duration")
    assert result.stderr.count("\n") == 1
    assert not (service_on / "service" / "run.lock").exists()  # nothing was started


def test_the_socket_is_in_the_home_or_in_a_private_tmp_folder(tmp_path, monkeypatch):
    home = tmp_path / "h"
    monkeypatch.setenv("PML_HOME", str(home))
    place = service_place()
    assert place.socket == home.resolve() / "service" / "pml.sock"
    assert oct(os.stat(place.folder).st_mode & 0o777) == "0o700"
    deep = tmp_path / ("d" * 120)
    monkeypatch.setenv("PML_HOME", str(deep))
    place = service_place()
    assert place.folder == deep.resolve() / "service"
    assert place.socket.parent == Path(f"/tmp/pml-{os.getuid()}")
    assert place.socket.suffix == ".sock" and len(str(place.socket)) < 100
    assert oct(os.stat(place.socket.parent).st_mode & 0o777) == "0o700"
