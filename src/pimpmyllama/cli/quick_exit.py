"""Leaving the process without tearing PyTorch down.

A Python process that has imported torch spends about 0.45 s at exit freeing its
modules, one object at a time (measured: `python -c "import torch"` 1.50 s, the same
followed by `os._exit` 1.10 s). Nothing of ours needs that teardown: every write
is complete, or atomic, before a command returns (a kill at that point loses
nothing), and what does need to run at exit — atexit handlers, `weakref.finalize`
callbacks, logging's flush — runs first. Only where no other thread is still
running: a normal exit would wait for it.
"""

import atexit
import os
import sys
import threading


def exit_code(code: object) -> int:
    """The status SystemExit(code) gives: None 0, an int itself, anything else printed and 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def leave(code: object) -> None:
    """Exit with SystemExit(code)'s status; quickly where torch is loaded."""
    if "torch" not in sys.modules or threading.active_count() > 1:
        raise SystemExit(code)
    status = exit_code(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be written to it
            pass
    os._exit(status)
