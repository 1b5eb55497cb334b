"""Running `pml` as a user does, in a subprocess, and checking its one-line errors."""

import os
import subprocess
import sys


def pml(*args, home, stdin=""):
    env = {**os.environ, "PML_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "pimpmyllama", *args], input=stdin, capture_output=True,
                          text=True, env=env, timeout=300)


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
