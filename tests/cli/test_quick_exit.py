"""Leaving without PyTorch's teardown: the status, the output, atexit handlers and
other threads are what a normal exit gives."""

import subprocess
import sys

import pytest

SCRIPT = """
import atexit, sys, threading, time
from pathlib import Path
import torch
from pimpmyllama.cli.quick_exit import leave
marks = Path(sys.argv[1])
atexit.register(lambda: (marks / "atexit").write_text("ran"))
if sys.argv[3] == "thread":
    threading.Thread(target=lambda: (time.sleep(0.3), (marks / "thread").write_text("done"))).start()
sys.stdout.write("partial line, no newline")  # buffered: must still come out
leave(int(sys.argv[2]) if sys.argv[2].isdigit() else sys.argv[2])
"""


@pytest.mark.parametrize("code, status", [("0", 0), ("3", 3), ("it failed", 1)])
def test_the_status_the_output_and_atexit_handlers_are_those_of_a_normal_exit(tmp_path, code, status):
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), code, "alone"], capture_output=True, text=True)
    assert done.returncode == status
    assert done.stdout == "partial line, no newline"
    assert (tmp_path / "atexit").read_text() == "ran"
    assert done.stderr == ("it failed\n" if status == 1 else "")


def test_a_running_thread_is_waited_for_as_a_normal_exit_does(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), "0", "thread"], capture_output=True, text=True)
    assert done.returncode == 0 and (tmp_path / "thread").read_text() == "done"
    assert (tmp_path / "atexit").read_text() == "ran"


def test_a_command_through_the_entry_point_exits_with_its_status(pml_home):
    """`pml` itself: a bad argument's usage error is still exit 2, a good command 0."""
    bad = subprocess.run([sys.executable, "-m", "pimpmyllama", "models", "show", "no-such-model"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "no-such-model" in bad.stderr
    assert subprocess.run([sys.executable, "-m", "pimpmyllama", "version"], capture_output=True).returncode == 0
