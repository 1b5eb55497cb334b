"""A model as one GGUF file, with the metadata keys, tensor names and layout that
llama.cpp's convert_hf_to_gguf.py writes for the `llama` architecture.

Tensors stream through one at a time: peak memory is one tensor in float32 plus its
encoded copy (for the default model, the 49152x576 embedding: ~115 MB + its copy),
besides the vocabulary.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from gguf import (
    GGUF_DEFAULT_ALIGNMENT,
    GGMLQuantizationType,
    GGUFWriter,
    RopeScalingType,
)

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.merging.gguf.names import gguf_name, to_gguf_layout
from pimpmyllama.merging.gguf.quants import Quant, encode, stored_bytes, tensor_type
from pimpmyllama.merging.gguf.vocab import Vocab, read_vocab
from pimpmyllama.models.shards import TensorSpec
from pimpmyllama.progress import Progress

ARCH = "llama"
QUANTIZATION_VERSION = 2  # ggml's block layouts for Q4_1/Q8_0, as the gguf-py writer stamps them


@dataclass(frozen=True)
class Planned:
    spec: TensorSpec
    name: str  # llama.cpp's
    kind: GGMLQuantizationType


def read_config(folder: Path) -> dict:
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if config.get("model_type") != "llama":
        raise InvalidInputError(f"only Llama-architecture models can be exported to GGUF "
                                f"(this one is {config.get('model_type')!r})")
    return config


def _rope(config: dict) -> tuple[float, dict]:
    params = config.get("rope_parameters") or {}
    scaling = config.get("rope_scaling") or {k: v for k, v in params.items() if k != "rope_theta"}
    theta = float(params.get("rope_theta", config.get("rope_theta", 10000.0)))
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind in (None, "default"):
        return theta, {}
    if kind in ("linear", "yarn") and scaling.get("factor"):
        return theta, scaling | {"rope_type": kind}
    raise InvalidInputError(f"rope scaling {kind!r} cannot be exported to GGUF here (linear and yarn can)")


def add_metadata(writer: GGUFWriter, config: dict, vocab: Vocab, quant: Quant, name: str) -> None:
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    theta, scaling = _rope(config)
    writer.add_type("model")
    writer.add_name(name)
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(config.get("num_key_value_heads") or heads)
    writer.add_rope_freq_base(theta)
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    if head_dim != config["hidden_size"] // heads:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    if scaling:
        writer.add_rope_scaling_type(RopeScalingType.LINEAR if scaling["rope_type"] == "linear"
                                     else RopeScalingType.YARN)
        writer.add_rope_scaling_factor(float(scaling["factor"]))
        if scaling.get("original_max_position_embeddings"):
            writer.add_rope_scaling_orig_ctx_len(int(scaling["original_max_position_embeddings"]))
    writer.add_file_type(quant.file_type)
    writer.add_vocab_size(config["vocab_size"])
    writer.add_rope_dimension_count(head_dim)
    writer.add_add_space_prefix(vocab.add_space_prefix)
    writer.add_add_bos_token(vocab.add_bos)
    if vocab.add_eos:
        writer.add_add_eos_token(True)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    writer.add_token_merges(vocab.merges)
    adders = {"bos": writer.add_bos_token_id, "eos": writer.add_eos_token_id,
              "unk": writer.add_unk_token_id, "pad": writer.add_pad_token_id}
    for kind, token_id in vocab.special.items():
        adders[kind](token_id)
    if vocab.chat_template:
        writer.add_chat_template(vocab.chat_template)
    writer.add_quantization_version(QUANTIZATION_VERSION)


def plan_tensors(specs: list[TensorSpec], config: dict, quant: Quant) -> list[Planned]:
    """The tensors llama.cpp stores, with their names and types; a tied output head is
    left out (llama.cpp reuses token_embd when `output.weight` is absent)."""
    tied = config.get("tie_word_embeddings", False)
    planned = []
    for spec in specs:
        name = gguf_name(spec.name)
        if name is None or (tied and name == "output.weight"):
            continue
        planned.append(Planned(spec, name, tensor_type(quant, name, spec.shape)))
    return planned


def write_tensors(writer: GGUFWriter, path: Path, planned: list[Planned], produce: Callable[[TensorSpec], torch.Tensor],
                  layout: Callable[[str, torch.Tensor], torch.Tensor], progress: Progress | None) -> None:
    """Declare every tensor, write the header, then each tensor's data in turn, and
    check the file's size is the sum of its parts."""
    for item in planned:
        writer.add_tensor_info(item.name, item.spec.shape, np.dtype(np.float32),
                               stored_bytes(item.kind, item.spec.shape), raw_dtype=item.kind)
    writer.write_header_to_file(path)
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    data_start = writer.fout[0].tell()
    for done, item in enumerate(planned):
        array = layout(item.spec.name, produce(item.spec)).to(torch.float32).contiguous().numpy()
        # A float64 sum cannot overflow on float32 values, so it is finite exactly when
        # every value is (one fast pass instead of an elementwise mask).
        if not np.isfinite(array.sum(dtype=np.float64)):
            raise InvalidInputError(f"tensor {item.spec.name} holds NaN or infinite values")
        writer.write_tensor_data(encode(array, item.kind))
        if progress:
            progress("writing GGUF tensors", done + 1, len(planned))
    writer.close()
    check_size(path, data_start, [stored_bytes(p.kind, p.spec.shape) for p in planned])


def check_size(path: Path, data_start: int, sizes: list[int]) -> None:
    """The file holds every tensor's bytes, each at its aligned offset, and nothing more."""
    pad = GGUFWriter.ggml_pad
    expected = pad(data_start, GGUF_DEFAULT_ALIGNMENT) + sum(pad(n, GGUF_DEFAULT_ALIGNMENT) for n in sizes)
    if path.stat().st_size != expected:
        raise InvalidInputError(f"the written GGUF has {path.stat().st_size} bytes, not the {expected} planned")


def write_model_gguf(path: Path, folder: Path, specs: list[TensorSpec], produce: Callable[[TensorSpec], torch.Tensor],
                     quant: Quant, name: str, progress: Progress | None = None) -> None:
    """A GGUF of the model whose config and tokenizer are in `folder`, with tensors
    `produce(spec)` (base weights, or with an adapter merged), at `path`."""
    config = read_config(folder)
    vocab = read_vocab(folder, config["vocab_size"])
    planned = plan_tensors(specs, config, quant)
    writer = GGUFWriter(path=None, arch=ARCH)
    add_metadata(writer, config, vocab, quant, name)
    write_tensors(writer, path, planned, produce, lambda n, t: to_gguf_layout(n, t, config), progress)
