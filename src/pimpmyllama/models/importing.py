"""Turning a Hugging Face folder or a GGUF file into a store entry.

Every entry ends up the same way: config.json, safetensors weights,
tokenizer.json (+ tokenizer_config.json, chat template, generation config) and
pml-model.json saying where it came from. A GGUF is dequantized once here, so
later loads read safetensors (about a second) instead of a GGUF (tens of seconds).
"""

import json
import shutil
from contextlib import contextmanager
from pathlib import Path

from pimpmyllama.errors import InvalidInputError, NotFoundError
from pimpmyllama.models.manifest import Manifest
from pimpmyllama.models.shelf import TOKENIZER_FILES
from pimpmyllama.models.weights import check_complete, open_tensors, safetensors_files
from pimpmyllama.progress import Progress, no_progress
from pimpmyllama.quiet import quiet_transformers

GGUF_ARCHITECTURES = ("llama", "mistral", "qwen2")
_COPIED_FILES = ("config.json", "model.safetensors.index.json", *TOKENIZER_FILES)


def import_into(source: Path, dest: Path, progress: Progress | None = None) -> Manifest:
    """Fill the (empty, temporary) folder `dest` from `source`; return its manifest.
    Errors name the user's files, never the temporary folder."""
    progress = progress or no_progress
    if not source.exists():
        raise NotFoundError(f"{source} does not exist")
    if source.is_dir():
        fmt = "hf"
        _import_hf_folder(source, dest, progress)
    elif source.suffix.lower() == ".gguf":
        fmt = "gguf"
        _import_gguf(source, dest, progress)
    else:
        raise InvalidInputError(f"{source} is neither a Hugging Face model folder nor a .gguf file")
    progress("verifying", 0, None)
    return Manifest(kind="model", made_by="import", source=str(source.resolve()), format=fmt)


def _import_hf_folder(source: Path, dest: Path, progress: Progress) -> None:
    if not (source / "config.json").exists():
        raise InvalidInputError(f"{source} has no config.json: not a Hugging Face model folder")
    config = _read_config(source / "config.json")
    if not config.get("model_type"):
        raise InvalidInputError(f"{source / 'config.json'} names no model_type")
    weights = safetensors_files(source)
    if not weights:
        if any(source.glob("*.bin")) or any(source.glob("*.pt")):
            raise InvalidInputError(
                f"{source} has PyTorch pickle weights only; convert them to safetensors first"
            )
        raise InvalidInputError(f"{source} holds no .safetensors weights")
    for path in weights:
        check_complete(path)  # a truncated or corrupt file fails here, before any copy
    for name in _COPIED_FILES:
        if (source / name).exists():
            shutil.copy2(source / name, dest / name)
    for i, path in enumerate(weights):
        progress("copying weights", i, len(weights))
        shutil.copy2(path, dest / path.name)
    progress("copying weights", len(weights), len(weights))
    if not (dest / "tokenizer.json").exists():
        _convert_tokenizer(source, dest)


def _read_config(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{path} is not valid JSON: {exc}") from None


def _convert_tokenizer(source: Path, dest: Path) -> None:
    """Slow (sentencepiece) tokenizers become a tokenizer.json through transformers."""
    quiet_transformers()
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(source))
    except Exception as exc:  # transformers raises many kinds here
        raise InvalidInputError(f"{source} has no usable tokenizer ({exc})") from None
    tokenizer.save_pretrained(str(dest))
    if not (dest / "tokenizer.json").exists():
        raise InvalidInputError(f"{source}'s tokenizer cannot be converted to tokenizer.json")


def gguf_architecture(path: Path) -> str:
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(path))
        field = reader.fields["general.architecture"]
        return bytes(field.parts[field.data[0]]).decode()
    except (KeyError, ValueError, IndexError, OSError) as exc:
        raise InvalidInputError(f"{path} is not a readable GGUF file ({exc})") from None


@contextmanager
def _tensor_progress(progress: Progress, stage: str):
    """transformers dequantizes a GGUF in a tqdm loop; report that loop's steps."""
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    original = getattr(gguf_utils, "tqdm", None)

    def counting(iterable, *args, **kwargs):
        items = list(iterable)
        for i, item in enumerate(items):
            progress(stage, i, len(items))
            yield item
        progress(stage, len(items), len(items))

    gguf_utils.tqdm = counting
    try:
        yield
    finally:
        if original is not None:
            gguf_utils.tqdm = original


def _import_gguf(source: Path, dest: Path, progress: Progress) -> None:
    progress("reading GGUF", 0, None)
    arch = gguf_architecture(source)
    if arch not in GGUF_ARCHITECTURES:
        raise InvalidInputError(
            f"{source.name}: GGUF architecture {arch!r} is not supported "
            f"(supported: {', '.join(GGUF_ARCHITECTURES)})"
        )
    quiet_transformers()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    progress("reading tokenizer", 0, None)
    tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
    with _tensor_progress(progress, "dequantizing tensors"):
        model = AutoModelForCausalLM.from_pretrained(
            str(source.parent), gguf_file=source.name, dtype=torch.float32
        )
    # transformers marks GGUF-loaded models as quantized and refuses to save them;
    # the tensors are plain dequantized floats by now, so drop the marker.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    progress("writing safetensors", 0, None)
    model.save_pretrained(str(dest))
    tokenizer.save_pretrained(str(dest))


def add_generation_defaults(folder: Path, values: dict) -> None:
    """Record recommended sampling settings in the model's generation_config.json."""
    path = folder / "generation_config.json"
    config = json.loads(path.read_text()) if path.exists() else {}
    config.update(values)
    path.write_text(json.dumps(config, indent=2))


def verify_model_folder(folder: Path) -> None:
    """Every tensor readable and finite, and a tokenizer present. (Running the model
    is the engine's check, which the producers above the store add.)"""
    import torch

    _read_config(folder / "config.json")
    for path in safetensors_files(folder):
        check_complete(path)
    with open_tensors(folder) as reader:
        for name in reader.keys():
            tensor = reader.get(name)
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                raise InvalidInputError(f"tensor {name} holds NaN or infinite values")
    if not (folder / "tokenizer.json").exists():
        raise InvalidInputError("the model has no tokenizer.json")
