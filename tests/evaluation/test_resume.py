"""A run killed with kill -9 loses at most the answer in flight; running it again
completes it, with the same results as an uninterrupted run and no duplicate rows."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from compare_data import QUESTIONS, SPEC

TESTS = Path(__file__).resolve().parent.parent
REPLIES = ["It opens at 9 H.", "No idea.", "Hello.", "At 10am.", "Yes, a CAP is required.", "Hi."]

KILLER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from fakes import FakeEngine
    import pimpmyllama.chat.opening as opening
    from pimpmyllama.evaluation.runner import run_comparison

    class Killed(FakeEngine):
        def generate(self, prompt_ids, params, num_ctx=None):
            if len(self.prompts) == {kill_at} - 1:
                os.kill(os.getpid(), signal.SIGKILL)  # in the middle of the third answer
            return super().generate(prompt_ids, params, num_ctx)

    engine = Killed(Path({model!r}), {replies!r})
    opening.load_engine = lambda ref, progress=None, **options: engine
    run_comparison(Path({spec!r}), Path({out!r}))
""")


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def _comparable(rows) -> list[dict]:
    return [{k: v for k, v in r.to_dict().items() if k != "rss_mb"} for r in rows]


def test_kill_9_mid_run_then_rerun(fake_engine, tiny_model, pml_home, write_spec, tmp_path):
    from pimpmyllama.evaluation.runner import run_comparison

    spec = write_spec(SPEC, QUESTIONS)
    out = tmp_path / "killed"
    script = KILLER.format(tests=str(TESTS), kill_at=3, model=str(tiny_model), replies=REPLIES, spec=str(spec),
                           out=str(out))
    env = {**os.environ, "PML_HOME": str(pml_home), "PYTHONPATH": os.pathsep.join(sys.path)}
    killed = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    kept = _lines(out / "results.jsonl")
    assert [x["reply"] for x in kept] == REPLIES[:2]  # the two answers before the kill, nothing else
    assert not (out / "report.html").exists()
    with open(out / "results.jsonl", "a") as f:
        f.write('{"variant": "base", "fingerprint": "')  # as if killed in the middle of a write

    fake_engine.replies.extend(REPLIES[2:])
    resumed = run_comparison(spec, out)
    assert len(fake_engine.prompts) == 4  # only the missing answers were asked
    fake_engine.replies.extend(REPLIES)
    clean = run_comparison(spec, tmp_path / "clean")
    assert _comparable(resumed.rows) == _comparable(clean.rows)
    lines = _lines(out / "results.jsonl")
    keys = [(x["fingerprint"], x["question_id"], x["seed"]) for x in lines]
    assert len(keys) == len(set(keys)) == 6
    assert [x["reply"] for x in lines] == REPLIES


def test_a_partial_last_line_is_cut_before_the_next_append(tmp_path):
    from pimpmyllama.evaluation.cache import JsonlCache

    path = tmp_path / "c.jsonl"
    path.write_text('{"k": 1, "v": "first"}\n{"k": 1, "v": "duplicate"}\n{"k": 2, "v": "cut')
    cache = JsonlCache(path, lambda line: (line["k"],))
    assert cache.get((1,)) == {"k": 1, "v": "first"} and (2,) not in cache
    cache.append({"k": 2, "v": "whole"})
    assert path.read_text() == '{"k": 1, "v": "first"}\n{"k": 1, "v": "duplicate"}\n{"k": 2, "v": "whole"}\n'
