"""Writing safetensors one tensor at a time, in shards.

The header of a safetensors file lists every tensor's dtype, shape and byte range
before any data, and those are known up front (from the inputs' headers), so the
header is written first and each tensor appended as soon as it is computed: peak
memory is one tensor, not a model.
"""

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

DTYPES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}
SIZES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # safetensors dtype code, e.g. "F32"
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        n = SIZES[self.dtype]
        for dim in self.shape:
            n *= dim
        return n


def _header(specs: list[TensorSpec], metadata: dict) -> bytes:
    header, offset = {"__metadata__": metadata}, 0
    for spec in specs:
        header[spec.name] = {"dtype": spec.dtype, "shape": list(spec.shape), "data_offsets": [offset, offset + spec.nbytes]}
        offset += spec.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # data starts 8-byte aligned
    return struct.pack("<Q", len(raw)) + raw


def plan_shards(specs: list[TensorSpec], max_shard_bytes: int) -> list[list[TensorSpec]]:
    shards, current, size = [], [], 0
    for spec in specs:
        if current and size + spec.nbytes > max_shard_bytes:
            shards.append(current)
            current, size = [], 0
        current.append(spec)
        size += spec.nbytes
    if current:
        shards.append(current)
    return shards


def write_streaming(folder: Path, specs: list[TensorSpec], produce: Callable[[TensorSpec], torch.Tensor],
                    max_shard_bytes: int = 4_000_000_000, on_tensor: Callable[[int, int], None] | None = None,
                    metadata: dict | None = None) -> list[Path]:
    """Write `specs` (in order) into model.safetensors or model-0000i-of-0000n shards,
    computing each tensor with `produce` just before it is written."""
    shards = plan_shards(specs, max_shard_bytes)
    names = (["model.safetensors"] if len(shards) == 1
             else [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))])
    done, total = 0, len(specs)
    weight_map = {}
    for shard, file_name in zip(shards, names):
        with open(folder / file_name, "wb") as f:
            f.write(_header(shard, {"format": "pt", **(metadata or {})}))
            for spec in shard:
                tensor = produce(spec).detach().contiguous()
                if DTYPES.get(tensor.dtype) != spec.dtype or tuple(tensor.shape) != spec.shape:
                    raise ValueError(f"{spec.name}: produced {tensor.dtype} {tuple(tensor.shape)}, "
                                     f"expected {spec.dtype} {spec.shape}")
                f.write(memoryview(tensor.reshape(-1).view(torch.uint8).numpy()))  # no copy
                weight_map[spec.name] = file_name
                done += 1
                if on_tensor:
                    on_tensor(done, total)
    if len(shards) > 1:
        index = {"metadata": {"total_size": sum(s.nbytes for s in specs)}, "weight_map": weight_map}
        (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return [folder / n for n in names]
