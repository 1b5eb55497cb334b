"""Our own CPU kernels for decoding (gemv.cpp: quantized products; decode.cpp: the
small operations of a single-token step), built for this machine on
first use and kept in the user's cache.

They need AVX-512 with VNNI (the integer dot products that llama.cpp uses on these
CPUs) and a C++ compiler; where either is missing, or the build fails, `load()`
says so once and the engine uses PyTorch's own weight-only kernels instead. The
build is plain g++ against the installed torch's headers (~15 s), written to a
temporary file and moved into place, so that a killed or concurrent build never
leaves a broken library. PML_KERNELS=0 turns them off (for comparisons).
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

import torch

SOURCES = [Path(__file__).with_name(name) for name in ("gemv.cpp", "blocks.cpp", "decode.cpp")]
NEEDED_FLAGS = ("avx512f", "avx512bw", "avx512vl", "avx512_vnni", "f16c", "fma")
COMPILE_FLAGS = ["-O3", "-fopenmp", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512vnni", "-mf16c", "-mfma"]


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


def _library_path() -> Path:
    """Where this source, built against this torch with these flags, lives."""
    key = hashlib.sha256()
    for part in (*(s.read_bytes() for s in SOURCES), torch.__version__.encode(), " ".join(COMPILE_FLAGS).encode()):
        key.update(part)
    return cache_dir() / f"pml_kernels_{key.hexdigest()[:16]}.so"


def _build(target: Path) -> None:
    from torch.utils import cpp_extension

    compiler = shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        raise RuntimeError("no C++ compiler (g++) found")
    target.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.write("pimpmyllama: building its CPU kernels for this machine (once, about 15 s)\n")
    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        partial = Path(work) / target.name
        command = [compiler, "-shared", "-fPIC", "-std=c++17", *COMPILE_FLAGS, f"-D_GLIBCXX_USE_CXX11_ABI={abi}",
                   *(f"-I{p}" for p in cpp_extension.include_paths()), *map(str, SOURCES), "-o", str(partial),
                   *(f"-L{p}" for p in cpp_extension.library_paths()), "-lc10", "-ltorch_cpu"]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"the kernels did not compile: {done.stderr.strip().splitlines()[-1:]}")
        os.replace(partial, target)
    for old in target.parent.glob("pml_kernels_*.so"):  # builds of earlier sources or torch versions
        if old != target:
            old.unlink(missing_ok=True)


@cache
def load() -> bool:
    """Whether our kernels (torch.ops.pml.*) are there to use, building them if needed."""
    if os.environ.get("PML_KERNELS", "1") == "0":
        return False
    missing = [flag for flag in NEEDED_FLAGS if flag not in cpu_flags()]
    if missing:
        return False  # PyTorch's kernels serve this CPU; nothing to say
    target = _library_path()
    try:
        if not target.exists():
            _build(target)
        torch.ops.load_library(str(target))
    except (OSError, RuntimeError) as exc:
        sys.stderr.write(f"pimpmyllama: using PyTorch's kernels instead of its own ({exc})\n")
        return False
    return True
