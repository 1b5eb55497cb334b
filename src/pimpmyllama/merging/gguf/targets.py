"""`pml export --format gguf | ollama | gguf-lora`: each output complete or not at all
(written under a temporary name and renamed into place)."""

import json
from pathlib import Path

from pimpmyllama.atomic import atomic_dir, atomic_file
from pimpmyllama.errors import InvalidInputError
from pimpmyllama.generation.engine import sampling_defaults
from pimpmyllama.merging.export import model_tensors
from pimpmyllama.merging.gguf.lora import write_lora_gguf
from pimpmyllama.merging.gguf.modelfile import render_modelfile
from pimpmyllama.merging.gguf.ollama_template import to_ollama
from pimpmyllama.merging.gguf.quants import get_quant
from pimpmyllama.merging.gguf.write import write_model_gguf
from pimpmyllama.models.adapters import check_adapter_base
from pimpmyllama.models.refs import ResolvedModel
from pimpmyllama.progress import Progress
from pimpmyllama.prompting.build import Build
from pimpmyllama.prompting.format import ChatFormat
from pimpmyllama.prompting.tokenizer import Tokenizer

MODEL_FILE = "model.gguf"


def _new_file(output: Path) -> None:
    if output.exists():
        raise InvalidInputError(f"{output} exists: give a new file name")


def _gguf(model: ResolvedModel, path: Path, quant: str, progress: Progress | None) -> None:
    specs, produce = model_tensors(model)
    write_model_gguf(path, model.folder, specs, produce, get_quant(quant), model.label, progress)


def export_gguf(model: ResolvedModel, output: Path, quant: str = "f16", progress: Progress | None = None) -> Path:
    """One GGUF file of the model, with its adapter (if any) merged."""
    get_quant(quant)
    _new_file(output)
    with atomic_file(output) as tmp:
        _gguf(model, tmp, quant, progress)
    return output


def export_ollama(model: ResolvedModel, build: Build, output: Path, quant: str = "f16",
                  progress: Progress | None = None, source: str = "") -> Path:
    """A folder (new, or empty) with model.gguf and a Modelfile that carries `build`.
    The chat template is translated first, so an unsupported one writes nothing."""
    get_quant(quant)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise InvalidInputError(f"{output} exists and is not an empty folder")
    tokenizer = Tokenizer(model.folder)
    fmt = ChatFormat(tokenizer, build.template, model_name=model.label)
    template = to_ollama(fmt.template, tokenizer.bos_token,
                         name=f"the chat template of {'the build' if build.template else model.label}")
    context_length = json.loads((model.folder / "config.json").read_text())["max_position_embeddings"]
    params = build.parameters.for_model(context_length, sampling_defaults(model.folder))
    text = render_modelfile(build, params, template, MODEL_FILE, source or model.label)
    with atomic_dir(output, replace=output.exists()) as tmp:
        _gguf(model, tmp / MODEL_FILE, quant, progress)
        (tmp / "Modelfile").write_text(text, encoding="utf-8")
    return output


def export_gguf_lora(model: ResolvedModel, output: Path) -> Path:
    """The adapter of MODEL+ADAPTER as a GGUF LoRA for llama.cpp's `--lora`."""
    if model.adapter is None:
        raise InvalidInputError(f"{model.label} has no adapter: --format gguf-lora exports MODEL+ADAPTER "
                                "or an adapter")
    check_adapter_base(model.adapter, model.folder, model.name)
    _new_file(output)
    with atomic_file(output) as tmp:
        write_lora_gguf(tmp, model.folder, model.adapter, model.adapter.name)
    return output
