"""Serving throughput and latency: `pml serve` against llama.cpp's own `llama-server`,
in one run.

For each concurrency (1, 8 and 32 clients by default) each server is started fresh
on the bundled default model, answers one warm-up request, and then every client
sends streamed chat completions back to back — a short request of its own,
temperature 0, 64 new tokens — until the time is up (or it has sent its number of
requests); the requests then in flight finish and count. A request that fails is
counted by its status and its client waits half a second before the next one.
Measured for each server: aggregate completion tokens/s (every completion token
over the wall time), p50/p95 time to first token (the first chunk carrying text)
and end-to-end latency, requests done, errors by status.

  - ours: `python -m pimpmyllama serve` on the bundled model, as a user runs it,
    with OMP_NUM_THREADS = --threads (2); `--ours-args` adds options to its command line.
  - llama-server: built from the llama-cpp-python sdist (`make bench-serve`), on
    the model's bundled Q4_1 GGUF (the file bench/generation.py uses), with `-np`
    equal to the concurrency, 2048 tokens of context per slot and `-t` --threads;
    `--llama-args` adds options.
Both are sent `"ignore_eos": true`, so every reply is 64 tokens long; ours runs
with `--parallel` equal to the concurrency (as llama-server's `-np`) and loads
the model at start (`--model`).

--load: the load run, against ours only: --concurrency clients (32) for --seconds
(300); errors by status, 503s (a full queue: intended) apart from the others; and
the server's RSS every --rss-every seconds: start, min, max, end, and its slope
over the second half of the run (least squares, MB/min; "stable" under 1 MB/min);
the samples go to bench/out/serve/<run>/rss.csv.

    python bench/serve.py [--concurrency 1,8,32] [--seconds 60 | --requests N] [--max-tokens 64] [--threads 2]
                          [--only ours|llama] [--ours-args "--flag value"] [--llama-server PATH]
                          [--llama-args "--flag value"]
    python bench/serve.py --load [--seconds 300] [--concurrency 32] [--parallel 8] [--ours-args "--max-queue 16"]
                          [--rss-every 5]
"""

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).parents[1]
LOGS = ROOT / "bench" / "out" / "serve" / time.strftime("%Y%m%d-%H%M%S")  # this run's server logs
LLAMA_SERVER = ROOT / ".bench" / "llama.cpp" / "build" / "bin" / "llama-server"
CONTEXT_PER_SLOT = 2048
RETRY_PAUSE = 0.5  # seconds a client waits after a failed request, so a refusing server is not flooded
STABLE_MB_PER_MIN = 1.0

TOPICS = [
    "the moon", "honey bees", "volcanoes", "the printing press", "coral reefs", "glaciers", "the violin",
    "bread baking", "lighthouses", "the human heart", "rainbows", "chess", "penguins", "the Roman roads",
    "solar panels", "tea", "earthquakes", "the bicycle", "owls", "paper money", "tides", "the telescope",
    "deserts", "vaccines", "the piano", "maple syrup", "thunderstorms", "the compass", "octopuses",
    "windmills", "clouds", "the alphabet", "rice farming", "comets", "the steam engine", "bamboo",
    "the Nile", "photosynthesis", "castles", "the internet",
]
PROMPTS = [f"Write a short paragraph about {topic}." for topic in TOPICS]


@dataclass
class Server:
    name: str
    command: list[str]
    url: str
    model: str
    extra_body: dict = field(default_factory=dict)  # fields only this server is sent
    env: dict = field(default_factory=dict)  # added to the process's environment


@dataclass
class Sample:
    """One request as a client saw it."""
    status: int | str  # the HTTP status, "error event" (an error inside a 200 stream), or the exception's name
    first: float | None = None  # seconds to the first text
    latency: float | None = None
    tokens: int = 0
    detail: str = ""  # what went wrong: the error's body or message, shortened


# --- the servers ---------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ours(model: str, slots: int, threads: int, extra_args: str) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "pimpmyllama", "serve", "--port", str(port), "--parallel", str(slots),
               "--model", model, *shlex.split(extra_args)]
    # PyTorch's thread pools read OMP_NUM_THREADS when they start.
    return Server("ours", command, f"http://127.0.0.1:{port}", model, {"ignore_eos": True},
                  env={"OMP_NUM_THREADS": str(threads)})


def llama(binary: Path, gguf: Path, slots: int, threads: int, extra_args: str) -> Server:
    port = free_port()
    command = [str(binary), "-m", str(gguf), "-np", str(slots), "-c", str(slots * CONTEXT_PER_SLOT),
               "-t", str(threads), "--host", "127.0.0.1", "--port", str(port), *shlex.split(extra_args)]
    return Server("llama-server", command, f"http://127.0.0.1:{port}", gguf.stem, {"ignore_eos": True})


def die_with_parent() -> None:
    """In the child before exec: Linux sends it SIGTERM if the bench dies without
    stopping it (SIGKILL), so no server outlives its bench."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_healthy(server: Server, process: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {process.returncode}; see {log}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"{server.name} not healthy after {timeout:.0f} s; see {log}")


@contextlib.contextmanager
def running(server: Server, label: str):
    """The server's process, healthy; stopped (terminate, then kill) on the way out,
    whatever the way out (an error, Ctrl-C)."""
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{server.name}-{label}.log"
    with open(log, "w") as sink:
        # A session of its own: Ctrl-C reaches the bench alone, which then stops the server.
        # preexec_fn is safe here: servers are started before any thread (asyncio runs between).
        process = subprocess.Popen(server.command, stdout=sink, stderr=subprocess.STDOUT,
                                   env={**os.environ, **server.env}, start_new_session=True,
                                   preexec_fn=die_with_parent)  # noqa: PLW1509
    try:
        wait_healthy(server, process, log)
        yield process
    finally:
        stop(process)


# --- the clients ---------------------------------------------------------------------

def request_body(server: Server, prompt: str, max_tokens: int) -> dict:
    return {"model": server.model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "temperature": 0, "stream": True, "stream_options": {"include_usage": True}, **server.extra_body}


def stream_event(line: str) -> dict | None:
    """A server-sent event's JSON, or None for blank lines and `[DONE]`."""
    if not line.startswith("data: ") or line == "data: [DONE]":
        return None
    return json.loads(line.removeprefix("data: "))


async def timed_request(client: httpx.AsyncClient, server: Server, prompt: str, max_tokens: int) -> Sample:
    start = time.perf_counter()
    sample, pieces = Sample(200), 0
    try:
        async with client.stream("POST", f"{server.url}/v1/chat/completions",
                                 json=request_body(server, prompt, max_tokens)) as response:
            if response.status_code != 200:
                return Sample(response.status_code, detail=(await response.aread()).decode(errors="replace"))
            async for line in response.aiter_lines():
                event = stream_event(line)
                if event is None:
                    continue
                if "error" in event:
                    return Sample("error event", detail=json.dumps(event["error"]))
                if any(choice["delta"].get("content") for choice in event.get("choices", [])):
                    pieces += 1
                    if sample.first is None:
                        sample.first = time.perf_counter() - start
                if event.get("usage"):
                    sample.tokens = event["usage"]["completion_tokens"]
    except httpx.HTTPError as exc:
        return Sample(type(exc).__name__, detail=str(exc) or repr(exc))
    sample.latency = time.perf_counter() - start
    sample.tokens = sample.tokens or pieces  # a server that sends no usage: its text chunks
    return sample


async def client_loop(client, server: Server, index: int, clients: int, deadline: float | None,
                      requests: int | None, max_tokens: int) -> list[Sample]:
    """One client's requests, back to back; its n-th asks about topic index + n * clients,
    so the clients' concurrent requests differ."""
    samples = []
    while (deadline is None or time.perf_counter() < deadline) and (requests is None or len(samples) < requests):
        prompt = PROMPTS[(index + len(samples) * clients) % len(PROMPTS)]
        samples.append(await timed_request(client, server, prompt, max_tokens))
        if samples[-1].status != 200:
            await asyncio.sleep(RETRY_PAUSE)
    return samples


async def run_clients(server: Server, clients: int, seconds: float | None, requests: int | None,
                      max_tokens: int) -> tuple[list[Sample], float]:
    """Every client's samples, and the wall time from the first request to the last reply."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=httpx.Timeout(900), limits=limits) as client:
        start = time.perf_counter()
        deadline = start + seconds if seconds else None
        loops = [client_loop(client, server, i, clients, deadline, requests, max_tokens) for i in range(clients)]
        per_client = await asyncio.gather(*loops)
        return [s for samples in per_client for s in samples], time.perf_counter() - start


def warm_up(server: Server) -> None:
    """One short request first: our server loads (and at its first start imports) the model then."""
    sample, _ = asyncio.run(run_clients(server, 1, None, 1, 8))
    if sample[0].status != 200:
        raise RuntimeError(f"{server.name}: the warm-up request failed ({sample[0].status})")


# --- the figures ---------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def summarize(samples: list[Sample], wall: float) -> dict:
    done = [s for s in samples if s.status == 200]
    tokens = sum(s.tokens for s in done)
    firsts = [s.first for s in done if s.first is not None]
    latencies = [s.latency for s in done]
    return {"tokens/s": tokens / wall, "tokens/request": tokens / len(done) if done else float("nan"),
            "done": len(done), "ttft p50": percentile(firsts, 50), "ttft p95": percentile(firsts, 95),
            "latency p50": percentile(latencies, 50), "latency p95": percentile(latencies, 95),
            "errors": Counter(s.status for s in samples if s.status != 200), "wall": wall,
            "details": {s.status: s.detail[:200] for s in reversed(samples) if s.status != 200}}  # the first of each


def errors_text(errors: Counter) -> str:
    return ", ".join(f"{status} ×{n}" for status, n in sorted(errors.items(), key=str)) or "0"


# (key, label, format, whether the ours / llama-server ratio is shown)
ROWS = [("tokens/s", "completion tokens/s", "{:.1f}", True), ("tokens/request", "tokens per request", "{:.1f}", False),
        ("done", "requests done", "{}", False), ("ttft p50", "first token p50 (s)", "{:.2f}", True),
        ("ttft p95", "first token p95 (s)", "{:.2f}", True), ("latency p50", "latency p50 (s)", "{:.2f}", True),
        ("latency p95", "latency p95 (s)", "{:.2f}", True), ("wall", "wall time (s)", "{:.1f}", False)]


def print_table(clients: int, results: dict[str, dict]) -> None:
    names = list(results)
    both = len(names) == 2
    print(f"\n{clients} client{'s' if clients > 1 else ''}")
    print(f"{'measure':<24}" + "".join(f"{n:>16}" for n in names) + (f"{'ours / llama':>16}" if both else ""))
    for key, label, fmt, with_ratio in ROWS:
        cells = "".join(f"{fmt.format(results[n][key]):>16}" for n in names)
        ratio = f"{results['ours'][key] / results['llama-server'][key]:>15.2f}×" if both and with_ratio else ""
        print(f"{label:<24}{cells}{ratio}")
    print(f"{'errors':<24}" + "".join(f"{sum(results[n]['errors'].values()):>16}" for n in names))
    print_error_details(results)


def print_error_details(results: dict[str, dict]) -> None:
    for name, result in results.items():
        for status, detail in result["details"].items():
            print(f"  {name}: {status} ×{result['errors'][status]}, the first: {detail}")
    sys.stdout.flush()


def print_batching_gain(by_clients: dict[int, dict[str, dict]]) -> None:
    ours_tps = {c: r["ours"]["tokens/s"] for c, r in by_clients.items() if "ours" in r}
    if 1 not in ours_tps or len(ours_tps) == 1:
        return
    print("\nours: tokens/s at N clients / at 1 client (what batching buys)")
    for clients, tps in ours_tps.items():
        if clients != 1:
            print(f"  {clients:>3} clients: {tps / ours_tps[1]:.2f}×")


# --- the two modes -------------------------------------------------------------------

def measure(server: Server, clients: int, args) -> dict:
    with running(server, f"{clients}"):
        warm_up(server)
        samples, wall = asyncio.run(run_clients(server, clients, args.seconds, args.requests, args.max_tokens))
    return summarize(samples, wall)


def servers_for(clients: int, args) -> list[Server]:
    from pimpmyllama.models.defaults import bundled_default_gguf

    chosen = []
    if args.only in (None, "ours"):
        chosen.append(ours(args.model, args.parallel or clients, args.threads, args.ours_args))
    if args.only in (None, "llama") and args.llama_server.exists():
        chosen.append(llama(args.llama_server, bundled_default_gguf(), clients, args.threads, args.llama_args))
    return chosen


def compare(args) -> None:
    if not args.llama_server.exists():
        if args.only == "llama":
            raise SystemExit(f"no llama-server at {args.llama_server} (`make bench-serve` builds it)")
        print(f"llama-server: left out (none at {args.llama_server}; `make bench-serve` builds it)")
    length = f"{args.seconds:.0f} s" if args.seconds else f"{args.requests} requests"
    print(f"model {args.model} · {args.max_tokens} max tokens · each client sends for {length}"
          f" · {args.threads} threads per server · {os.cpu_count()} CPUs", flush=True)
    by_clients = {}
    for clients in args.concurrency:
        by_clients[clients] = {s.name: measure(s, clients, args) for s in servers_for(clients, args)}
        print_table(clients, by_clients[clients])
    print_batching_gain(by_clients)


def rss_mb(pid: int) -> float:
    try:
        import psutil
    except ImportError:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
    return psutil.Process(pid).memory_info().rss / 2**20


async def sample_rss(pid: int, every: float, into: list[tuple[float, float]]) -> None:
    start = time.perf_counter()
    while True:
        into.append((time.perf_counter() - start, rss_mb(pid)))
        await asyncio.sleep(every)


async def loaded(server: Server, pid: int, args) -> tuple[list[Sample], float, list[tuple[float, float]]]:
    rss: list[tuple[float, float]] = []
    sampler = asyncio.create_task(sample_rss(pid, args.rss_every, rss))
    try:
        samples, wall = await run_clients(server, args.concurrency[0], args.seconds, args.requests, args.max_tokens)
    finally:
        sampler.cancel()
    rss.append((wall, rss_mb(pid)))
    return samples, wall, rss


def slope_mb_per_min(rss: list[tuple[float, float]]) -> float:
    """The least-squares slope of RSS over the second half of the run."""
    half = [(t, mb) for t, mb in rss if t >= rss[-1][0] / 2]
    if len(half) < 2:
        return float("nan")
    times, mbs = zip(*half)
    return float(np.polyfit(times, mbs, 1)[0]) * 60


def print_load(clients: int, summary: dict, rss: list[tuple[float, float]]) -> None:
    errors = Counter(summary["errors"])
    full = errors.pop(503, 0)
    values = [mb for _, mb in rss]
    slope = slope_mb_per_min(rss)
    print(f"\nload run: {clients} clients for {summary['wall']:.0f} s against ours")
    print(f"{'requests done':<28}{summary['done']}")
    print(f"{'completion tokens/s':<28}{summary['tokens/s']:.1f}")
    print(f"{'latency p50 / p95 (s)':<28}{summary['latency p50']:.2f} / {summary['latency p95']:.2f}")
    print(f"{'503 (queue full, intended)':<28}{full}")
    print(f"{'other errors':<28}{errors_text(errors)}")
    print_error_details({"ours": summary})  # the 503s' message too: what a refused client reads
    print(f"{'RSS MB start/min/max/end':<28}{values[0]:.0f} / {min(values):.0f} / {max(values):.0f} / {values[-1]:.0f}"
          f"  ({len(values)} samples)")
    verdict = "stable" if abs(slope) < STABLE_MB_PER_MIN else "GROWS" if slope > 0 else "shrinks"
    print(f"{'RSS slope, 2nd half':<28}{slope:+.2f} MB/min ({verdict})")


def load_run(args) -> None:
    clients = args.concurrency[0]
    server = ours(args.model, args.parallel or clients, args.threads, args.ours_args)
    with running(server, f"load-{clients}") as process:
        warm_up(server)
        samples, wall, rss = asyncio.run(loaded(server, process.pid, args))
    print_load(clients, summarize(samples, wall), rss)
    write_rss(rss, LOGS / "rss.csv")


def write_rss(rss: list[tuple[float, float]], path: Path) -> None:
    path.write_text("seconds,rss_mb\n" + "".join(f"{t:.1f},{mb:.1f}\n" for t, mb in rss))
    print(f"RSS samples: {path}")


def parse_args() -> argparse.Namespace:
    from pimpmyllama.models.defaults import DEFAULT_MODEL

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", default=None, help="clients, comma-separated (default 1,8,32; --load: 32)")
    runs = parser.add_mutually_exclusive_group()
    runs.add_argument("--seconds", type=float, default=None, help="each client's sending time (default 60; --load 300)")
    runs.add_argument("--requests", type=int, default=None, help="requests per client, instead of --seconds")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="each server's: llama-server -t, ours OMP_NUM_THREADS")
    parser.add_argument("--only", choices=["ours", "llama"])
    parser.add_argument("--parallel", type=int, default=None,
                        help="ours: requests decoded together (default: the concurrency, as llama-server's -np)")
    parser.add_argument("--ours-args", default="", help="extra options for `pml serve`, one string (e.g. --max-queue)")
    parser.add_argument("--llama-server", type=Path, default=LLAMA_SERVER)
    parser.add_argument("--llama-args", default="", help="extra options for llama-server, one string (last wins)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="the model our server is asked for")
    parser.add_argument("--load", action="store_true", help="the load run against ours (RSS sampled)")
    parser.add_argument("--rss-every", type=float, default=5.0, help="--load: seconds between RSS samples")
    args = parser.parse_args()
    args.concurrency = [int(n) for n in (args.concurrency or ("32" if args.load else "1,8,32")).split(",")]
    if args.seconds is None and args.requests is None:
        args.seconds = 300.0 if args.load else 60.0
    return args


def main() -> None:
    # A plain `kill` of the bench unwinds like Ctrl-C, so its servers are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = parse_args()
    if args.load:
        load_run(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()
