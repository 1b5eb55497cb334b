"""Reading safetensors checkpoints, single-file or sharded, one tensor at a time."""

import json
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pimpmyllama.errors import InvalidInputError


def safetensors_files(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.exists():
        weight_map = json.loads(index.read_text())["weight_map"]
        return [folder / name for name in sorted(set(weight_map.values()))]
    files = sorted(folder.glob("*.safetensors"))
    return [f for f in files if not f.name.startswith("adapter_")]


def read_header(path: Path) -> dict:
    """The JSON header of a safetensors file: name -> {dtype, shape, data_offsets}."""
    return _header_and_data_start(path)[0]


def read_metadata(path: Path) -> dict[str, str]:
    """The `__metadata__` strings of a safetensors file (empty if it has none)."""
    return _header_and_data_start(path)[2]


def _header_and_data_start(path: Path) -> tuple[dict, int, dict[str, str]]:
    try:
        with open(path, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            if size > 100_000_000:
                raise ValueError("header too large")
            header = json.loads(f.read(size))
    except (OSError, ValueError, struct.error) as exc:
        raise InvalidInputError(f"{path} is not a readable safetensors file ({exc})") from None
    metadata = header.pop("__metadata__", None) or {}
    return header, 8 + size, metadata


def check_complete(path: Path) -> None:
    """The file holds every byte its header promises (a cut-off copy fails here)."""
    header, start, _ = _header_and_data_start(path)
    end = start + max((info["data_offsets"][1] for info in header.values()), default=0)
    size = path.stat().st_size
    if size < end:
        raise InvalidInputError(f"{path} is truncated: {size} bytes, its header describes {end}")


def tensor_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for path in safetensors_files(folder):
        for name, info in read_header(path).items():
            shapes[name] = tuple(info["shape"])
    return shapes


@contextmanager
def open_tensors(folder: Path, files: list[Path] | None = None) -> Iterator["TensorFiles"]:
    """A reader of a checkpoint: `reader.get(name)` loads one tensor (None if absent)."""
    files = files if files is not None else safetensors_files(folder)
    if not files:
        raise InvalidInputError(f"{folder} holds no .safetensors weights")
    yield TensorFiles(folder, files)


_TORCH_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64", "I64": "int64",
                 "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}


class TensorFiles:
    """Reads tensors from a checkpoint with plain file reads (no memory map), so a
    process that streams through several models holds only the tensors it is using:
    mapped pages would count against its memory until the files are closed."""

    def __init__(self, folder: Path, files: list[Path] | None = None):
        self.index: dict[str, tuple[Path, dict, int]] = {}
        for path in files if files is not None else safetensors_files(folder):
            header, data_start, _ = _header_and_data_start(path)
            for name, info in header.items():
                self.index[name] = (path, info, data_start)

    def names(self) -> list[str]:
        return list(self.index)

    def keys(self):
        return self.index.keys()

    def get(self, name: str):
        """The tensor, or None if the checkpoint has no such name."""
        return self.read(name) if name in self.index else None

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.index[name][1]["shape"])

    def dtype(self, name: str) -> str:
        return self.index[name][1]["dtype"]

    def mapped(self, name: str):
        """The tensor as stored, through a private memory map of its bytes in the file
        (nothing read until a page is used, and used pages shared with the page cache);
        None if the checkpoint has no such name. For a large table of which a process
        reads a few rows (the token embeddings); the file must not change in place
        meanwhile (the store replaces model folders whole)."""
        import numpy as np
        import torch

        if name not in self.index:
            return None
        path, info, data_start = self.index[name]
        start, end = info["data_offsets"]
        dtype = getattr(torch, _TORCH_DTYPES[info["dtype"]])
        if end == start:
            return torch.empty(info["shape"], dtype=dtype)
        # copy-on-write ("c"): a writable array for torch, whose writes would never reach the file
        raw = np.memmap(path, dtype=np.uint8, mode="c", offset=data_start + start, shape=(end - start,))
        return torch.from_numpy(raw).view(dtype).reshape(info["shape"])

    def read(self, name: str):
        import os

        import torch

        path, info, data_start = self.index[name]
        start, end = info["data_offsets"]
        dtype = getattr(torch, _TORCH_DTYPES[info["dtype"]])
        # read straight into the tensor's own memory: no zero-filled buffer first, no copy after
        tensor = torch.empty(end - start, dtype=torch.uint8)
        if not len(tensor):
            return torch.empty(info["shape"], dtype=dtype)
        fd = os.open(path, os.O_RDONLY)
        try:
            view, offset = memoryview(tensor.numpy()), 0
            while offset < len(view):
                n = os.preadv(fd, [view[offset:]], data_start + start + offset)
                if n <= 0:
                    raise InvalidInputError(f"{path}: truncated while reading {name}")
                offset += n
        finally:
            os.close(fd)
        return tensor.view(dtype).reshape(info["shape"])
