"""LoRA and merging: bake an adapter into its base (`pml merge lora`), and recover an
adapter from a fine-tune (`pml extract-lora`, a truncated SVD of each weight's change).

Extraction covers the linear layers with low-rank factors; any other tensor that
changed (embeddings, norms, an untied output head) is stored whole, as PEFT's
`modules_to_save`. With tied embeddings there is one embedding tensor, stored once,
so the head is not counted twice (a known way extraction goes wrong elsewhere).
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

from pimpmyllama.devices import resolve_device
from pimpmyllama.errors import InvalidInputError
from pimpmyllama.generation.checks import check_model_runs
from pimpmyllama.models.adapters import AdapterStore, base_fingerprint
from pimpmyllama.merging.export import write_with_adapter
from pimpmyllama.models.manifest import Manifest, Parent
from pimpmyllama.models.refs import resolve_model, resolve_model_folder
from pimpmyllama.models.store import ModelStore
from pimpmyllama.models.weights import TensorFiles
from pimpmyllama.progress import Progress

_LINEAR = re.compile(r"^(model\.layers\.\d+\.(?:self_attn|mlp)\.(\w+_proj))\.weight$")


@dataclass
class Extraction:
    name: str
    rank: int
    modules: int
    whole_tensors: list[str]
    relative_error: float  # mean over modules of |delta - BA| / |delta|


def merge_lora_to_store(base_ref: str, adapter_ref: str, name: str, progress: Progress | None = None, *,
                        force: bool = False) -> Path:
    """MODEL + ADAPTER baked into one standalone model of the store."""
    store = ModelStore()
    store.check_new(name, force)
    resolved = resolve_model(base_ref, adapter=adapter_ref)
    with store.create(name, force=force, check=check_model_runs) as draft:
        draft.manifest = write_with_adapter(draft.folder, resolved, progress, made_by="merge-lora")
    return store.shelf.entry(name)


def extract_lora(tuned_ref: str, base_ref: str, rank: int, name: str, progress: Progress | None = None, *,
                 force: bool = False, device=None) -> Extraction:
    """`device`: where each SVD runs (devices.resolve_device; None: the default in force);
    the factors are written from the CPU."""
    store = AdapterStore()
    store.check_new(name, force)
    device = resolve_device(device)
    if rank < 1:
        raise InvalidInputError("rank must be at least 1")
    tuned_name, tuned_folder = resolve_model_folder(tuned_ref)
    base_name, base_folder = resolve_model_folder(base_ref)
    tuned, base = TensorFiles(tuned_folder), TensorFiles(base_folder)
    if set(tuned.names()) != set(base.names()):
        missing = sorted(set(tuned.names()) ^ set(base.names()))[0]
        raise InvalidInputError(f"{tuned_name} and {base_name} do not have the same tensors (first difference: {missing})")
    tensors: dict[str, torch.Tensor] = {}
    targets, whole, errors = set(), [], []
    names = sorted(tuned.names())
    for i, tensor_name in enumerate(names):
        if progress:
            progress("extracting", i, len(names))
        if tuned.shape(tensor_name) != base.shape(tensor_name):
            raise InvalidInputError(f"tensor {tensor_name} has shape {tuned.shape(tensor_name)} in {tuned_name} "
                                    f"but {base.shape(tensor_name)} in {base_name}")
        delta = tuned.read(tensor_name).float() - base.read(tensor_name).float()
        if not delta.any():
            continue
        match = _LINEAR.match(tensor_name)
        if match:
            delta = delta.to(device)
            u, s, vh = torch.linalg.svd(delta, full_matrices=False)
            r = min(rank, s.numel())
            root = s[:r].sqrt()
            b, a = u[:, :r] * root, root[:, None] * vh[:r]
            if r < rank:  # a layer narrower than the rank: zero-pad, as PEFT wants one r
                b = torch.cat([b, b.new_zeros(b.shape[0], rank - r)], dim=1)
                a = torch.cat([a, a.new_zeros(rank - r, a.shape[1])], dim=0)
            tensors[f"base_model.model.{match[1]}.lora_A.weight"] = a.contiguous().cpu()
            tensors[f"base_model.model.{match[1]}.lora_B.weight"] = b.contiguous().cpu()
            targets.add(match[2])
            errors.append(float(torch.linalg.norm(delta - b @ a) / torch.linalg.norm(delta)))
        else:
            tensors[f"base_model.model.{tensor_name}"] = tuned.read(tensor_name).contiguous()
            whole.append(tensor_name)
    if not tensors:
        raise InvalidInputError(f"{tuned_name} and {base_name} have identical weights: nothing to extract")
    config = {
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": rank, "lora_dropout": 0.0,
        "target_modules": sorted(targets), "bias": "none", "fan_in_fan_out": False, "use_rslora": False,
        "base_model_name_or_path": str(base_folder), "inference_mode": True,
        "modules_to_save": sorted({w.removesuffix(".weight").rsplit(".", 1)[-1] for w in whole}) or None,
    }
    result = Extraction(name, rank, len(errors), whole, sum(errors) / len(errors) if errors else 0.0)
    with store.create(name, force=force) as draft:
        save_file(tensors, str(draft.folder / "adapter_model.safetensors"), metadata={"format": "pt"})
        (draft.folder / "adapter_config.json").write_text(json.dumps(config, indent=2))
        draft.manifest = Manifest(
            kind="adapter", made_by="extract-lora", source=f"extracted from {tuned_name}",
            parents=[Parent(ref=base_ref, path=str(base_folder), fingerprint=base_fingerprint(base_folder)),
                     Parent(ref=tuned_ref, path=str(tuned_folder), fingerprint=base_fingerprint(tuned_folder))],
            extraction={"rank": rank, "whole_tensors": whole, "relative_error": result.relative_error})
    return result
