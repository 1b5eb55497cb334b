"""Hugging Face Llama tensor names to llama.cpp's, and the query/key row order llama.cpp
expects (the layout convert_hf_to_gguf.py writes for the `llama` architecture)."""

import re

import torch

from pimpmyllama.errors import InvalidInputError

_GLOBAL = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}

_BLOCK = {
    "input_layernorm": "attn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}

_LAYER = re.compile(r"model\.layers\.(\d+)\.(.+)\.(weight|bias)")

# Buffers some checkpoints carry that llama.cpp recomputes.
_SKIPPED = re.compile(r".*rotary_emb\.inv_freq")


def gguf_name(name: str) -> str | None:
    """llama.cpp's name for a Hugging Face Llama tensor; None for a tensor it does not
    store. An unknown tensor is an error (exporting without it would lose weights)."""
    if name in _GLOBAL:
        return _GLOBAL[name]
    if _SKIPPED.fullmatch(name):
        return None
    match = _LAYER.fullmatch(name)
    if match and match[2] in _BLOCK:
        return f"blk.{match[1]}.{_BLOCK[match[2]]}.{match[3]}"
    raise InvalidInputError(f"tensor {name} has no place in a llama.cpp Llama model")


def rope_permute(tensor: torch.Tensor, heads: int) -> torch.Tensor:
    """Reorder a query/key projection's rows from Hugging Face's rotary layout (the two
    halves of each head) to llama.cpp's (interleaved pairs), for `heads` heads."""
    rows = tensor.shape[0]
    return (tensor.reshape(heads, 2, rows // heads // 2, *tensor.shape[1:])
            .swapaxes(1, 2).reshape(tensor.shape))


def to_gguf_layout(name: str, tensor: torch.Tensor, config: dict) -> torch.Tensor:
    """A tensor as llama.cpp stores it: query and key rows permuted, others as they are."""
    if ".self_attn.q_proj." in name:
        return rope_permute(tensor, config["num_attention_heads"])
    if ".self_attn.k_proj." in name:
        return rope_permute(tensor, config.get("num_key_value_heads") or config["num_attention_heads"])
    return tensor
