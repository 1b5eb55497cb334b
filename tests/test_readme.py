"""The README's commands run as written.

Which commands: every line of a ```bash block in README.md that starts with `pml `,
one command per line, run by bash from the repository root with `pml` on PATH, stdin
empty (so `pml chat` starts, loads, and leaves at end of input), and a fresh
PML_HOME holding the bundled default model. A line is skipped, with its reason, when:

1. it starts with a prefix in SKIPPED (commands too slow for the test suite);
2. a word of it looks like a file (no spaces, and a `/` or a data/model file suffix)
   and is not in the repository (globs: nothing matches): it needs the user's own files;
3. it names a result (`-o NAME`, also as `MODEL+NAME`) of a line skipped before it: it needs that step.

Everything else must exit 0 with no traceback.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SKIPPED = {
    "pml train": "minutes of training on two cores (tests/e2e/test_finetuning.py trains for real)",
}
FILE_SUFFIXES = {".yml", ".yaml", ".json", ".jsonl", ".csv", ".parquet", ".txt", ".md", ".html", ".pdf", ".docx",
                 ".gguf", ".safetensors"}
FENCE = re.compile(r"^```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)


def bash_lines(markdown: str) -> list[str]:
    return [line.strip() for block in FENCE.findall(markdown) for line in block.splitlines() if line.strip()]


def _missing_files(words: list[str], root: Path) -> list[str]:
    def file_like(word: str) -> bool:
        if "://" in word or any(c.isspace() for c in word):  # URLs and quoted sentences are not files
            return False
        return "/" in word or Path(word).suffix in FILE_SUFFIXES

    return [w for w in words if file_like(w) and not list(root.glob(w))]


def select_commands(markdown: str, root: Path = ROOT) -> tuple[list[str], dict[str, str]]:
    """The `pml` lines to run, in order, and the skipped ones with the rule that skipped them."""
    run, skipped, not_made = [], {}, set()
    for line in bash_lines(markdown):
        if not line.startswith("pml "):
            continue
        words = shlex.split(line, comments=True)
        prefix = next((p for p in SKIPPED if line.startswith(p + " ")), None)
        missing = _missing_files(words, root)
        needs = {n for n in not_made for w in words if w == n or w.endswith(f"+{n}")}  # NAME or MODEL+NAME
        if prefix or missing or needs:
            skipped[line] = SKIPPED[prefix] if prefix else (
                f"needs the user's files: {', '.join(missing)}" if missing else
                f"needs the result of a skipped step: {', '.join(sorted(needs))}")
            not_made.update(words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-o", "--output"))
        else:
            run.append(line)
    return run, skipped


def test_the_selection_rule(tmp_path):
    (tmp_path / "data.jsonl").write_text("{}\n")
    markdown = "\n".join([
        "```bash",
        "pml ask \"Is a/b a path? No: quoted with spaces.\"   # a comment",
        "make chat",
        "pml data check data.jsonl",
        "pml data check mine.jsonl",
        "pml train sft data.jsonl -o form",
        "pml ask --adapter form \"hi\"",
        "pml merge lora base form -o merged",
        "```",
        "```yaml",
        "pml: not a command",
        "```",
    ])
    run, skipped = select_commands(markdown, tmp_path)
    assert run == ['pml ask "Is a/b a path? No: quoted with spaces."   # a comment', "pml data check data.jsonl"]
    assert skipped == {
        "pml data check mine.jsonl": "needs the user's files: mine.jsonl",
        "pml train sft data.jsonl -o form": SKIPPED["pml train"],
        'pml ask --adapter form "hi"': "needs the result of a skipped step: form",
        "pml merge lora base form -o merged": "needs the result of a skipped step: form",
    }


def test_the_readme_has_commands_to_run():
    run, _ = select_commands((ROOT / "README.md").read_text())
    assert "pml create town-hall -f examples/town-hall.yml" in " ".join(run)
    assert len(run) >= 10, run


@pytest.mark.e2e
def test_every_readme_command_runs_as_written(default_model_home, tmp_path):
    run, _ = select_commands((ROOT / "README.md").read_text())
    home = tmp_path / "pml-home"
    # Hard links: the bundled model without a copy; the store only ever adds files by renaming.
    shutil.copytree(default_model_home / "models", home / "models", copy_function=os.link)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pml").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m pimpmyllama "$@"\n')
    (bin_dir / "pml").chmod(0o755)
    env = {**os.environ, "PML_HOME": str(home), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    for line in run:
        done = subprocess.run(["bash", "-o", "pipefail", "-c", line], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{line}\n{done.stderr}"
        assert "Traceback" not in done.stderr, f"{line}\n{done.stderr}"
