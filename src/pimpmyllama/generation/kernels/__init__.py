"""Our own CPU kernels for decoding (the quantized products and the small operations
of a single-token step, as torch.ops.pml.*), built for this machine on first use and
kept in the user's cache.

One library serves a process, chosen by what its CPU has (`LIBRARIES`, best first):
  - avx512: gemv.cpp, blocks.cpp, decode.cpp — AVX-512 with VNNI (the integer dot
    products llama.cpp uses on these CPUs);
  - avx2: avx2/*.cpp — AVX2 with FMA and F16C (most laptops and desktops since
    2013-2015): the same ops, layouts and results, bit for bit, from 8-lane halves
    and maddubs/madd integer products.
Each library's sources hold only its arithmetic; the ops around it (argument checks,
threads, tiles, the op schemas and registration) are the shared *_ops.h headers they
include (`OPS_HEADERS`).
Where neither fits, a C++ compiler is missing or the build fails, `load()` says so
(once, for a failure) and the engine uses PyTorch's own weight-only kernels.
PML_KERNELS chooses: unset or `1` the best the CPU takes, `avx512` or `avx2` that
library (if the CPU has its flags), `0` none (for comparisons).

An ARM NEON library would be one more entry of `LIBRARIES` (sources in neon/*.cpp
defining the arithmetic the *_ops.h headers name, on the same packed layouts —
vdotq_s32 where the CPU has `asimddp`, as vpdpbusd here — and its flags read from
the `Features` line of /proc/cpuinfo, see `cpu_flags`); it is not written yet, so
ARM CPUs use PyTorch's kernels.

The build is plain g++ against the installed torch's headers (~15 s), written to a
temporary file and moved into place, so that a killed or concurrent build never
leaves a broken library.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch

from pimpmyllama.errors import PmlError

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Library:
    """One build of the ops: its sources (and the headers they include), the CPU flags
    it needs (as /proc/cpuinfo names them) and the compiler flags that target them."""

    name: str
    sources: tuple[Path, ...]
    headers: tuple[Path, ...]
    needed_flags: tuple[str, ...]
    compile_flags: tuple[str, ...]


# the ops around each instruction set's arithmetic (argument checks, threads, tiles, registration), shared by both
OPS_HEADERS = tuple(HERE / n for n in ("gemv_ops.h", "blocks_ops.h", "decode_ops.h", "tiles.h"))

LIBRARIES = {
    "avx512": Library("avx512", tuple(HERE / n for n in ("gemv.cpp", "blocks.cpp", "decode.cpp")), OPS_HEADERS,
                      ("avx512f", "avx512bw", "avx512vl", "avx512_vnni", "f16c", "fma"),
                      ("-O3", "-fopenmp", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512vnni", "-mf16c", "-mfma")),
    "avx2": Library("avx2", tuple(HERE / "avx2" / n for n in ("gemv.cpp", "blocks.cpp", "decode.cpp")),
                    (*OPS_HEADERS, HERE / "avx2" / "lanes.h"),
                    ("avx2", "fma", "f16c"), ("-O3", "-fopenmp", "-mavx2", "-mfma", "-mf16c")),
}


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pimpmyllama" / "kernels"


def _library_path(library: Library) -> Path:
    """Where this library's sources, built against this torch with its flags, live."""
    key = hashlib.sha256()
    for part in (*(p.read_bytes() for p in (*library.sources, *library.headers)), torch.__version__.encode(),
                 " ".join(library.compile_flags).encode()):
        key.update(part)
    return cache_dir() / f"pml_kernels_{library.name}_{key.hexdigest()[:16]}.so"


def _build(library: Library, target: Path) -> None:
    from torch.utils import cpp_extension

    compiler = shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        raise RuntimeError("no C++ compiler (g++) found")
    target.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.write("pimpmyllama: building its CPU kernels for this machine (once, about 15 s)\n")
    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        partial = Path(work) / target.name
        command = [compiler, "-shared", "-fPIC", "-std=c++17", *library.compile_flags, f"-D_GLIBCXX_USE_CXX11_ABI={abi}",
                   *(f"-I{p}" for p in cpp_extension.include_paths()), *map(str, library.sources), "-o", str(partial),
                   *(f"-L{p}" for p in cpp_extension.library_paths()), "-lc10", "-ltorch_cpu"]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"the kernels did not compile: {done.stderr.strip().splitlines()[-1:]}")
        os.replace(partial, target)
    # this library's builds of earlier sources or torch versions (and unnamed ones, from before there were two)
    stale = re.compile(rf"pml_kernels_({library.name}_)?[0-9a-f]{{16}}\.so")
    for old in target.parent.glob("pml_kernels_*.so"):
        if old != target and stale.fullmatch(old.name):
            old.unlink(missing_ok=True)


def chosen() -> Library | None:
    """The library PML_KERNELS and this CPU's flags choose, or None (PyTorch's kernels)."""
    wanted = os.environ.get("PML_KERNELS", "1")
    if wanted == "0":
        return None
    if wanted != "1" and wanted not in LIBRARIES:
        raise PmlError(f"PML_KERNELS={wanted!r} is none of 0, 1, {', '.join(LIBRARIES)}")
    flags = cpu_flags()
    candidates = LIBRARIES.values() if wanted == "1" else [LIBRARIES[wanted]]
    return next((lib for lib in candidates if all(flag in flags for flag in lib.needed_flags)), None)


@cache
def load() -> bool:
    """Whether our kernels (torch.ops.pml.*) are there to use, building them if needed:
    the library `chosen()` names, the only one this process loads (both define the
    same ops)."""
    library, wanted = chosen(), os.environ.get("PML_KERNELS", "1")
    if library is None:
        if wanted in LIBRARIES:
            sys.stderr.write(f"pimpmyllama: using PyTorch's kernels (this CPU cannot run PML_KERNELS={wanted})\n")
        return False  # PyTorch's kernels serve this CPU, or were asked for
    target = _library_path(library)
    try:
        if not target.exists():
            _build(library, target)
        torch.ops.load_library(str(target))
    except (OSError, RuntimeError) as exc:
        sys.stderr.write(f"pimpmyllama: using PyTorch's kernels instead of its own ({exc})\n")
        return False
    return True
