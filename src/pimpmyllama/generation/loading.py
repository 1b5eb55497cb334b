"""Loading a stored model into the backend that runs it."""

import json
from pathlib import Path

import torch

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.generation.building import build_llama
from pimpmyllama.generation.heap import freed_memory_returned
from pimpmyllama.generation.hf_backend import HFBackend
from pimpmyllama.generation.llama import LlamaSpec, lean_unsupported_reason
from pimpmyllama.generation import kernels, prepared
from pimpmyllama.generation.placement import precision_on
from pimpmyllama.generation.precision import default_precision
from pimpmyllama.models.adapters import load_adapter
from pimpmyllama.models.manifest import MODEL_MANIFEST, read_manifest
from pimpmyllama.models.weights import open_tensors


def _made_by(folder: Path) -> str | None:
    manifest = read_manifest(folder / MODEL_MANIFEST, "model")
    return manifest.made_by if manifest else None


def load_backend(folder: Path, precision: str | None = None, adapter: Path | None = None, config: dict | None = None,
                 device: torch.device | None = None):
    """The lean Llama forward where it applies, transformers otherwise; a LoRA adapter,
    if given, is merged into the weights as they load (before any quantization), or
    at int4 runs beside them.
    `precision` None is the model's default on the lean forward (precision.default_precision:
    int4, or int8 for a model made by fine-tuning or merging), fp32 on transformers.
    `config`: the model's config.json as it should run (rope.scaled_config), when not
    as stored. `device` (default the CPU): where it runs, at the precision placement.precision_on
    gives there."""

    config_path = folder / "config.json"
    if not config_path.exists():
        raise InvalidInputError(f"{folder} has no config.json")
    stored = json.loads(config_path.read_text())
    config = config or stored
    reason = lean_unsupported_reason(config)
    device = device or torch.device("cpu")
    chosen = precision_on(device, precision, "fp32" if reason else default_precision(_made_by(folder)))
    dtype = chosen.dtype
    applied = None
    if adapter is not None:
        applied = load_adapter(adapter, folder, folder.name)
    if reason is not None:
        if chosen.weight_bits:
            raise InvalidInputError(f"precision {precision} needs the lean engine, which does not run {reason}; "
                                    "use fp32 or bf16")
        return HFBackend(folder, dtype, applied, config.get("rope_parameters") if config is not stored else None, device)
    spec = LlamaSpec.from_config(config)
    merge = chosen.merge_adapters
    # quantized products are kept for the next load, unless a LoRA is merged into them
    kept = (prepared.PreparedProducts(folder, chosen.name, bool(kernels.load()), dtype)
            if chosen.weight_bits and prepared.enabled() and not (merge and applied) else None)
    with freed_memory_returned(), open_tensors(folder) as reader:
        get = applied.wrap(reader.get, merge) if applied else reader.get
        low_rank = None if merge or applied is None else applied.low_rank
        try:
            # the embeddings mapped, not read, where nothing changes them and they stay on the CPU
            mapped = reader.mapped if applied is None and device.type == "cpu" else None
            model = build_llama(spec, get, dtype, chosen.weight_bits, chosen.head_bits, low_rank=low_rank,
                                prepared=kept, device=device, mapped=mapped)
        except KeyError as exc:
            raise InvalidInputError(f"{folder.name}: tensor {exc.args[0]} is missing from the weights") from None
        except RuntimeError as exc:  # shape mismatches surface from torch.cat/linear
            raise InvalidInputError(f"{folder.name}: weights do not match config.json ({exc})") from None
    if kept is not None:
        kept.save()
    return model
