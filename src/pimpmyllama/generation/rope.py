"""Rotary position embeddings as Llama-family configs describe them.

Supported: the plain rotation, `linear` scaling, and Llama 3's `llama3` scaling
(long wavelengths stretched, short ones kept, a smooth blend between).
"""

import math

import torch

SUPPORTED_ROPE_TYPES = ("default", "linear", "llama3")


def rope_parameters(config: dict) -> dict:
    """One dict of rope settings from either the newer `rope_parameters` field or
    the older `rope_theta` + `rope_scaling` pair."""
    params = dict(config.get("rope_parameters") or {})
    if not params:
        params = dict(config.get("rope_scaling") or {})
        params.setdefault("rope_theta", config.get("rope_theta", 10000.0))
    if "type" in params and "rope_type" not in params:
        params["rope_type"] = params.pop("type")
    params.setdefault("rope_type", "default")
    params.setdefault("rope_theta", config.get("rope_theta", 10000.0))
    return params


def inverse_frequencies(head_dim: int, params: dict) -> torch.Tensor:
    theta = float(params["rope_theta"])
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    kind = params["rope_type"]
    if kind == "default":
        return inv_freq
    factor = float(params["factor"])
    if kind == "linear":
        return inv_freq / factor
    if kind == "llama3":
        low, high = float(params["low_freq_factor"]), float(params["high_freq_factor"])
        old_ctx = float(params["original_max_position_embeddings"])
        wavelen = 2 * math.pi / inv_freq
        scaled = torch.where(wavelen > old_ctx / low, inv_freq / factor, inv_freq)
        smooth = (old_ctx / wavelen - low) / (high - low)
        blended = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= old_ctx / high) & (wavelen <= old_ctx / low)
        return torch.where(medium, blended, scaled)
    raise ValueError(f"unsupported rope type {kind!r}")


def rope_rotations(head_dim: int, params: dict, length: int) -> torch.Tensor:
    """The rotation of each position as complex numbers, [length, head_dim // 2]."""
    inv_freq = inverse_frequencies(head_dim, params).float()
    angles = torch.outer(torch.arange(length, dtype=torch.float32), inv_freq)
    return torch.polar(torch.ones_like(angles), angles)


def interleave_heads(weight: torch.Tensor, head_dim: int) -> torch.Tensor:
    """Reorder q/k projection rows from HF's half-split layout (dims i and i+d/2 rotate
    together) to pairs (2i, 2i+1). Queries and keys get the same order, so their dot
    products are unchanged, and rotating a pair becomes one complex multiplication."""
    half = head_dim // 2
    order = torch.stack([torch.arange(half), torch.arange(half) + half], dim=-1).flatten()
    heads = weight.shape[0] // head_dim
    return weight.view(heads, head_dim, *weight.shape[1:])[:, order].reshape(weight.shape)


def apply_rotations(x: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
    """Rotate x [T, heads, head_dim] (pair layout) by `rotations` [T, head_dim // 2]."""
    if x.dtype != torch.float32:  # complex numbers come in float32 pairs (none for bf16)
        return apply_rotations(x.float(), rotations).to(x.dtype)
    pairs = torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(pairs * rotations[:, None, :]).flatten(-2)
