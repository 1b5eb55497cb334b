"""`pml kb add` as separate processes: killed mid-way, and two at once (both engines)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from pimpmyllama.storage.db import open_database

SENTENCES = [
    "The town hall is open on weekdays.", "The library lends books for three weeks.",
    "The market takes place on Saturday morning.", "The museum is free on the first Sunday.",
    "Recycling is collected every Tuesday.", "The pool requires a swimming cap.",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    for i in range(40):
        paragraphs = [f"Note {i}.{j}: " + " ".join(SENTENCES[(i + j + k) % 6] for k in range(4)) for j in range(6)]
        (folder / f"note{i:02d}.md").write_text(f"# Note {i}\n\n" + "\n\n".join(paragraphs), encoding="utf-8")
    return folder


def env_for(tmp_path, db_target):
    env = {**os.environ, "PML_HOME": str(tmp_path / "home")}
    env["PML_DATABASE_URL"] = str(db_target) if isinstance(db_target, str) else ""
    if not isinstance(db_target, str):
        env["PML_HOME"] = str(db_target.parent)
    return env


def pml(env, *args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "pimpmyllama", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def counts(db_target):
    db = open_database(db_target)
    try:
        row = db.query_one("SELECT (SELECT COUNT(*) FROM documents) AS docs, (SELECT COUNT(*) FROM chunks) AS chunks, "
                           "(SELECT COUNT(DISTINCT source) FROM documents) AS sources")
        row["vectors"] = db.query_one("SELECT COUNT(*) AS n FROM vec_chunks_384")["n"]
        return row
    finally:
        db.close()


@pytest.fixture(scope="module")
def clean_counts(tmp_path_factory, corpus):
    home = tmp_path_factory.mktemp("clean")
    env = {**os.environ, "PML_HOME": str(home), "PML_DATABASE_URL": ""}
    assert pml(env, "kb", "create", "notes").wait() == 0
    proc = pml(env, "kb", "add", "notes", str(corpus))
    assert proc.wait() == 0, proc.stderr.read()
    result = counts(home / "pml.db")
    assert result["docs"] == 40 and result["chunks"] == result["vectors"] > 40
    return result


def test_a_killed_add_resumes_to_the_same_base(tmp_path, db_target, corpus, clean_counts):
    env = env_for(tmp_path, db_target)
    assert pml(env, "kb", "create", "notes").wait() == 0
    proc = pml(env, "kb", "add", "notes", str(corpus), "--batch-size", "3")
    deadline = time.time() + 120
    while time.time() < deadline:
        state = counts(db_target)
        if state["docs"] >= 3 or proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    mid = counts(db_target)
    assert 0 < mid["docs"] < 40, "the kill must land mid-way"
    assert mid["chunks"] == mid["vectors"]  # whole documents only
    rerun = pml(env, "kb", "add", "notes", str(corpus))
    assert rerun.wait() == 0, rerun.stderr.read()
    assert f"{mid['docs']} unchanged" in rerun.stdout.read()
    assert counts(db_target) == clean_counts


def test_two_processes_adding_at_once_do_not_corrupt_the_base(tmp_path, db_target, corpus, clean_counts):
    env = env_for(tmp_path, db_target)
    assert pml(env, "kb", "create", "notes").wait() == 0
    first = pml(env, "kb", "add", "notes", str(corpus), "--batch-size", "8")
    second = pml(env, "kb", "add", "notes", str(corpus), "--batch-size", "8")
    assert first.wait() == 0, first.stderr.read()
    assert second.wait() == 0, second.stderr.read()
    assert counts(db_target) == clean_counts
