"""A LoRA adapter as a GGUF LoRA, the file llama.cpp's `--lora` loads: the conventions
of llama.cpp's convert_lora_to_gguf.py (general.type `adapter`, adapter.type `lora`,
adapter.lora.alpha, tensors `<base tensor>.lora_a` / `.lora_b`).

llama.cpp scales each product by alpha / rank; the adapter's own scale (alpha / r, or
alpha / sqrt(r) with rsLoRA) is folded into lora_b and alpha written as the rank, so
the file means exactly what the adapter means under every scaling rule. The key rows of
lora_b for the query and key projections are permuted as the base weights are.
"""

from pathlib import Path

import numpy as np
import torch
from gguf import GGMLQuantizationType, GGUFWriter

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.merging.gguf.names import gguf_name, to_gguf_layout
from pimpmyllama.merging.gguf.write import ARCH, check_size, read_config
from pimpmyllama.models.adapters import Adapter


def lora_tensors(adapter: Adapter, config: dict) -> list[tuple[str, torch.Tensor]]:
    """(llama.cpp name, float32 tensor) for every tensor of the GGUF LoRA."""
    out: list[tuple[str, torch.Tensor]] = []
    for name, tensor in sorted(adapter.replacements.items()):
        if tensor.dim() != 1:
            raise InvalidInputError(f"the adapter replaces the whole weight {name}; llama.cpp LoRAs cannot carry "
                                    "that: export the model merged (--format gguf)")
        out.append((gguf_name(name), tensor.float()))
    for name, (a, b) in sorted(adapter.factors.items()):
        target = gguf_name(name)
        if target is None or target.startswith(("token_embd.", "output.")):
            raise InvalidInputError(f"the adapter changes {name}; llama.cpp LoRAs here cover the layers' "
                                    "projections only: export the model merged (--format gguf)")
        out.append((target + ".lora_a", a.float()))
        out.append((target + ".lora_b", to_gguf_layout(name, b.float(), config)))
    return out


def adapter_rank(adapter: Adapter) -> int:
    ranks = {a.shape[0] for a, _ in adapter.factors.values()}
    if len(ranks) != 1:
        raise InvalidInputError(f"the adapter's layers have different ranks ({sorted(ranks)}); a GGUF LoRA has "
                                "one alpha for all, so export the model merged (--format gguf)")
    return ranks.pop()


def write_lora_gguf(path: Path, base_folder: Path, adapter_folder: Path, name: str) -> None:
    """The GGUF LoRA of the adapter in `adapter_folder` (made on the model in
    `base_folder`) at `path`; F32 tensors, all held at once (adapters are small)."""
    config = read_config(base_folder)
    adapter = Adapter(adapter_folder)
    rank = adapter_rank(adapter) if adapter.factors else 1
    tensors = lora_tensors(adapter, config)
    writer = GGUFWriter(path=None, arch=ARCH)
    writer.add_type("adapter")
    writer.add_name(name)
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(rank))
    arrays = []
    for tensor_name, tensor in tensors:
        if not torch.isfinite(tensor).all():
            raise InvalidInputError(f"the adapter's {tensor_name} holds NaN or infinite values")
        array = tensor.contiguous().numpy().astype(np.float32)
        writer.add_tensor_info(tensor_name, array.shape, array.dtype, array.nbytes, GGMLQuantizationType.F32)
        arrays.append(array)
    writer.write_header_to_file(path)
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    start = writer.fout[0].tell()
    for array in arrays:
        writer.write_tensor_data(array)
    writer.close()
    check_size(path, start, [a.nbytes for a in arrays])
