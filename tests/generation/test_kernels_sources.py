"""What a kernel library's build is keyed by: the files its sources include."""

import re
from pathlib import Path

import pytest

from pimpmyllama.generation import kernels

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)


def included(files) -> set[Path]:
    """The project's headers these files include, directly or through each other."""
    found, todo = set(), list(files)
    while todo:
        path = todo.pop()
        for name in INCLUDE.findall(path.read_text()):
            header = (path.parent / name).resolve()
            if header not in found:
                found.add(header)
                todo.append(header)
    return found


@pytest.mark.parametrize("name", list(kernels.LIBRARIES))
def test_a_librarys_headers_are_exactly_what_its_sources_include(name):
    """A header missing from `headers` would leave a stale library in the cache after it changed."""
    library = kernels.LIBRARIES[name]
    assert included(library.sources) == {p.resolve() for p in library.headers}


def test_both_libraries_take_their_ops_from_the_same_headers():
    shared = included(kernels.LIBRARIES["avx512"].sources)
    assert {p.name for p in shared} == {"gemv_ops.h", "blocks_ops.h", "decode_ops.h", "tiles.h"}
    assert included(kernels.LIBRARIES["avx2"].sources) - shared == {kernels.HERE.resolve() / "avx2" / "lanes.h"}
