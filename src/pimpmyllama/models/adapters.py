"""LoRA adapters: the store (`$PML_HOME/adapters/NAME/`, PEFT's own file layout) and
applying an adapter to a base model's weights.

An adapter is merged into the weights as they load (W + alpha/r * B @ A), so the
engine runs at full speed with it; except at int4, where the 4-bit rounding of the
merged weights would erase most of a fine-tune's small changes (measured: a LoRA
that shortens replies from 12.9 to 3.5 tokens gave 10.4 once merged at int4), so
there the base is quantized alone and the adapter runs beside it, unmerged.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.models.manifest import Manifest, read_manifest
from pimpmyllama.models.shelf import Shelf
from pimpmyllama.models.weights import open_tensors, tensor_shapes
from pimpmyllama.paths import adapters_dir

if TYPE_CHECKING:  # torch loads with the weights, not with the store (a one-shot client needs the store)
    import torch

META = "pml-adapter.json"
_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<which>[AB])(?:\.[^.]+)?\.weight$")


def base_fingerprint(folder: Path) -> str:
    """Identifies a model's weights cheaply: tensor names and shapes, and the bytes of
    a few tensors (two fine-tunes of one architecture still differ)."""
    digest = hashlib.sha256()
    shapes = tensor_shapes(folder)
    digest.update(json.dumps(sorted(shapes.items())).encode())
    with open_tensors(folder) as reader:
        for name in ("model.norm.weight", "model.embed_tokens.weight"):
            tensor = reader.get(name)
            if tensor is not None:
                digest.update(tensor.flatten()[:65536].float().numpy().tobytes())
    return digest.hexdigest()[:16]


class AdapterStore:
    """`$PML_HOME/adapters/NAME/`, written only through `create` (see `Shelf`)."""

    def __init__(self, root: Path | None = None):
        self.shelf = Shelf(root or adapters_dir(), "adapter", META, check_adapter_files)
        self.root = self.shelf.root

    def names(self) -> list[str]:
        return self.shelf.names()

    def exists(self, name: str) -> bool:
        return self.shelf.exists(name)

    def folder(self, name: str) -> Path:
        return self.shelf.folder(name)

    def meta(self, name: str) -> Manifest | None:
        return self.shelf.manifest(name)

    def remove(self, name: str) -> None:
        self.shelf.remove(name)

    def check_new(self, name: str, force: bool = False) -> str:
        return self.shelf.check_new(name, force)

    def create(self, name: str, *, force: bool = False):
        """The one door for writing an adapter (see `Shelf.create`)."""
        return self.shelf.create(name, force=force)


def read_factors(folder: Path) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], dict[str, torch.Tensor]]:
    """({weight name: (A [r, in], scale * B [out, r])}, whole weights that replace the
    base's: PEFT's `modules_to_save`, e.g. embeddings or norms)."""
    config_path = folder / "adapter_config.json"
    if not config_path.exists():
        raise InvalidInputError(f"{folder} has no adapter_config.json: not a PEFT adapter")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        rank, alpha = int(config["r"]), float(config["lora_alpha"])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"{config_path} is not a usable LoRA config ({type(exc).__name__}: {exc})") from None
    if config.get("peft_type", "LORA") != "LORA" or config.get("use_dora"):
        raise InvalidInputError(f"{folder}: only plain LoRA adapters can be applied (not {config.get('peft_type')})")
    scale = alpha / (rank ** 0.5) if config.get("use_rslora") else alpha / rank
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    replacements: dict[str, torch.Tensor] = {}
    weights = folder / "adapter_model.safetensors"
    if not weights.exists():
        raise InvalidInputError(f"{folder} has no adapter_model.safetensors")
    with open_tensors(folder, [weights]) as reader:
        for key in reader.keys():
            match = _KEY.match(key)
            if match:
                pairs.setdefault(match["module"], {})[match["which"]] = reader.get(key).float()
            else:
                name = key.removeprefix("base_model.model.").replace(".modules_to_save.default", "")
                replacements[name] = reader.get(key)
    factors = {}
    for module, ab in pairs.items():
        if set(ab) != {"A", "B"}:
            raise InvalidInputError(f"{folder}: adapter tensor pair for {module} is incomplete")
        factors[f"{module}.weight"] = (ab["A"], scale * ab["B"])
    if not factors and not replacements:
        raise InvalidInputError(f"{folder}: the adapter holds no LoRA weights")
    return factors, replacements


def read_adapter(folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(updates to add: scale * B @ A per weight, whole weights that replace the base's)."""
    factors, replacements = read_factors(folder)
    return {name: b @ a for name, (a, b) in factors.items()}, replacements


def check_adapter_base(adapter: Path, base: Path, base_name: str) -> None:
    manifest = read_manifest(adapter / META, "adapter")
    made_on = manifest.base if manifest else None
    if made_on and made_on.fingerprint and made_on.fingerprint != base_fingerprint(base):
        raise InvalidInputError(f"adapter {adapter.name} was trained on {made_on.ref}, not on {base_name}")
    shapes = tensor_shapes(base)
    factors, replacements = read_factors(adapter)
    updates = {name: (b.shape[0], a.shape[1]) for name, (a, b) in factors.items()}  # B @ A's, without the product
    for name, shape in {**updates, **{n: tuple(t.shape) for n, t in replacements.items()}}.items():
        if name not in shapes:
            raise InvalidInputError(f"adapter {adapter.name} does not fit {base_name}: it has no weight {name}")
        if tuple(shapes[name]) != tuple(shape):
            raise InvalidInputError(
                f"adapter {adapter.name} does not fit {base_name}: {name} is {tuple(shapes[name])}, "
                f"the adapter's update {tuple(shape)}"
            )


class Adapter:
    """An adapter's effect on a base model's weights, applied tensor by tensor."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.factors, self.replacements = read_factors(folder)

    def apply(self, name: str, tensor: torch.Tensor) -> torch.Tensor:
        if name in self.replacements:
            return self.replacements[name].to(tensor.dtype)
        if name in self.factors:
            import torch

            a, b = self.factors[name]
            return torch.addmm(tensor.float(), b, a).to(tensor.dtype)
        return tensor

    def wrap(self, get: Callable[[str], torch.Tensor | None],
             merge: bool = True) -> Callable[[str], torch.Tensor | None]:
        """A tensor getter that returns base weights with the adapter applied (with
        `merge=False`, only its whole-tensor replacements: the LoRA factors are then
        for `low_rank`)."""

        def merged(name: str):
            tensor = get(name)
            if tensor is None or (not merge and name in self.factors):
                return tensor
            return self.apply(name, tensor)

        return merged

    def low_rank(self, name: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(A, scale * B) for a weight the adapter changes, None for one it does not."""
        return self.factors.get(name)

    def apply_to_module(self, module: torch.nn.Module) -> None:
        """Merge into a loaded transformers model, in place."""
        import torch

        with torch.no_grad():
            for name, param in module.named_parameters():
                if name in self.factors or name in self.replacements:
                    param.copy_(self.apply(name, param))


def check_adapter_files(folder: Path) -> None:
    """Every LoRA tensor present, finite, and paired."""
    import torch

    factors, replacements = read_factors(folder)
    for name, tensor in [*((n, b @ a) for n, (a, b) in factors.items()), *replacements.items()]:
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise InvalidInputError(f"the adapter's update for {name} holds NaN or infinite values")


def load_adapter(folder: Path, base: Path, base_name: str) -> Adapter:
    check_adapter_base(folder, base, base_name)
    return Adapter(folder)
