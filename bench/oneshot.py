"""One-shot commands as whole processes: `pml ask` and `pml kb search`, cold and warm,
against llama.cpp answering the same question in a process of its own.

    python bench/oneshot.py [--rounds 5] [--llama-python PATH]   (a Python that imports llama_cpp;
                                                              default: this one, as `make bench` installs it)

Contenders, taking turns round after round (the median of the rounds is shown):
  - llama.cpp: a Python process that loads the bundled Q4_1 GGUF through llama-cpp-python
    (2 threads) and answers the question (chat template, greedy, at most 12 tokens)
  - pml ask, in-process: PML_NO_SERVICE=1, the whole load in the command's own process
  - pml ask, cold service: no service running; the command starts one and waits for its answer
  - pml ask, warm service: the service is up (models loaded); the command is only a client
  - the same three for `pml kb search town "QUESTION"` (a base of examples/town-hall/docs)
  - python -c 'import torch': the floor under any process that runs the engine (no answer)
Peak RSS is the command's own process; for the service paths the service's peak is
shown beside it. pml runs a build of the bundled model with temperature 0 and
max_new_tokens 12. A scratch PML_HOME holds the model (hard links to ~/.pimpmyllama's
copy when there is one, else imported from the GGUF once) and a private cache for the
CPU kernels (built once before timing, so no run pays for their build); the model's prepared
weights are made by that same first run (a model's first load ever quantizes them, later loads read them).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUESTION = "What is the capital of France?"
KB_QUERY = "When does the library open?"
REPO = Path(__file__).resolve().parent.parent
LLAMA = """
import sys
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=2048, n_threads=2, verbose=False)
out = llm.create_chat_completion(messages=[{"role": "user", "content": sys.argv[2]}], max_tokens=12, temperature=0.0)
print(out["choices"][0]["message"]["content"].strip())
"""


STAGES = """
import json, sys, time
t = [time.perf_counter()]
import torch
t.append(time.perf_counter())
from pimpmyllama.chat.opening import open_conversation
t.append(time.perf_counter())
conversation, _ = open_conversation(sys.argv[1], None, new_session=False)
t.append(time.perf_counter())
reply = iter(conversation.send(sys.argv[2]))
next(reply)
t.append(time.perf_counter())
for _ in reply:
    pass
t.append(time.perf_counter())
print(json.dumps([b - a for a, b in zip(t, t[1:])]))
"""
STAGE_NAMES = ["import torch", "import the engine, chat, storage", "load: resolve, the tokenizer, the prepared weights",
               "prompt to first token (prefill, first steps)", "the other tokens"]


def timed(command: list[str], env: dict) -> tuple[float, float, str]:
    """(seconds, peak RSS MiB, stdout) of one whole process, its peak RSS from GNU time."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        started = time.perf_counter()
        done = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name, *command], env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return seconds, int(rss.read().split()[-1]) / 1024, done.stdout


def service_peak_mib(home: Path) -> float:
    pid = (home / "service" / "run.lock").read_text().strip()
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def prepare(home: Path, env: dict) -> Path:
    """The scratch home: the default model, the `town` base, a greedy 12-token build, built kernels,
    and the model's prepared weights (its first load ever quantizes them, and keeps them)."""
    pml = [sys.executable, "-m", "pimpmyllama"]
    models = home / "models" / "smollm2-135m-instruct"
    user_copy = Path.home() / ".pimpmyllama" / "models" / "smollm2-135m-instruct"
    if not models.exists() and user_copy.exists():
        shutil.copytree(user_copy, models, copy_function=os.link)
    build = home / "oneshot.yml"
    build.write_text("from: smollm2-135m-instruct\nparameters:\n  temperature: 0\n  max_new_tokens: 12\n")
    quiet = {**env, "PML_NO_SERVICE": "1"}
    if not (home / "pml.db").exists() or "town" not in subprocess.run(pml + ["kb", "list"], env=quiet,
                                                                        capture_output=True, text=True).stdout:
        subprocess.run(pml + ["kb", "create", "town"], env=quiet, check=True, capture_output=True)
        subprocess.run(pml + ["kb", "add", "town", str(REPO / "examples" / "town-hall" / "docs")], env=quiet,
                       check=True, capture_output=True)
    subprocess.run(pml + ["ask", str(build), QUESTION], env=quiet, check=True, capture_output=True)  # kernels, prepared weights
    return build


def gguf() -> str:
    sys.path.insert(0, str(REPO / "src"))
    from pimpmyllama.models.defaults import bundled_default_gguf

    return str(bundled_default_gguf())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--llama-python", default=sys.executable, help="a Python that imports llama_cpp")
    parser.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "pml-bench-oneshot")
    args = parser.parse_args()
    home = args.home
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PML_NO_SERVICE", "PML_KEEP_ALIVE", "PML_DATABASE_URL")}
    env.update(PML_HOME=str(home), XDG_CACHE_HOME=str(home / "cache"))
    build = prepare(home, env)
    pml = [sys.executable, "-m", "pimpmyllama"]
    ask, search = ["ask", str(build), QUESTION], ["kb", "search", "town", KB_QUERY]
    in_process = {**env, "PML_NO_SERVICE": "1"}

    def stop_service():
        subprocess.run(pml + ["service", "stop"], env=env, capture_output=True, check=True)
        lock = home / "service" / "run.lock"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the lock's holder gone: the service has exited
            pid = lock.read_text().strip() if lock.exists() else ""
            if not pid or not Path(f"/proc/{pid}").exists():
                return
            time.sleep(0.05)

    rows: dict[str, list[tuple[float, float, float | None]]] = {}
    answers: dict[str, str] = {}

    def record(name: str, result: tuple[float, float, str], service_rss: float | None = None):
        rows.setdefault(name, []).append((result[0], result[1], service_rss))
        answers[name] = result[2].strip()

    stages: list[list[float]] = []
    stop_service()
    try:
        for round_ in range(1, args.rounds + 1):
            record("llama.cpp ask", timed([args.llama_python, "-c", LLAMA, gguf(), QUESTION], env))
            record("python -c 'import torch' (the floor)", timed([sys.executable, "-c", "import torch"], env))
            record("pml ask, in-process", timed(pml + ask, in_process))
            record("pml ask, cold service", timed(pml + ask, env), service_peak_mib(home))
            record("pml ask, warm service", timed(pml + ask, env), service_peak_mib(home))
            stop_service()
            record("pml kb search, in-process", timed(pml + search, in_process))
            record("pml kb search, cold service", timed(pml + search, env), service_peak_mib(home))
            record("pml kb search, warm service", timed(pml + search, env), service_peak_mib(home))
            stop_service()
            bare = timed([sys.executable, "-c", "pass"], env)[0]
            stages.append([bare, *json.loads(timed([sys.executable, "-c", STAGES, str(build), QUESTION], in_process)[2])])
            print(f"round {round_} of {args.rounds} done", flush=True)
    finally:
        stop_service()  # never left running, whatever failed

    reference = statistics.median(s for s, _, _ in rows["llama.cpp ask"])
    print(f"\nwhole processes, median of {args.rounds} rounds taking turns; ratio = time / llama.cpp's one-shot ask\n")
    print("| command | time (s) | × llama.cpp | peak RSS (MiB) | service peak RSS (MiB) |")
    print("|---|---:|---:|---:|---:|")
    for name, runs in rows.items():
        seconds = statistics.median(s for s, _, _ in runs)
        rss = statistics.median(r for _, r, _ in runs)
        service = [x for _, _, x in runs if x is not None]
        service_cell = f"{statistics.median(service):.0f}" if service else "–"
        print(f"| {name} | {seconds:.2f} | {seconds / reference:.2f}× | {rss:.0f} | {service_cell} |")
    print("\nwhere an in-process `pml ask` spends its time (median seconds; a Python process of its own)\n")
    print("| stage | seconds |\n|---|---:|")
    for i, name in enumerate(["start Python", *STAGE_NAMES]):
        print(f"| {name} | {statistics.median(row[i] for row in stages):.2f} |")
    print("\nanswers:", json.dumps({k: v[:80] for k, v in answers.items() if "ask" in k}, ensure_ascii=False))


if __name__ == "__main__":
    main()
