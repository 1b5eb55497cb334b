"""Rotary position embeddings as Llama-family configs describe them.

Supported: the plain rotation; `linear` scaling (every position divided by the
factor); `dynamic` NTK scaling (a larger base, so low frequencies stretch and high
ones barely move); `yarn` (YaRN, arXiv 2309.00071: each frequency interpolated or
kept by how many turns it makes over the trained length, and an attention factor);
and Llama 3's `llama3` scaling (long wavelengths stretched, short ones kept, a smooth
blend between). The formulas are those of transformers' `modeling_rope_utils`
(tests/generation/test_rope.py checks them against it).

`dynamic` with a KV cache: keys in the cache were rotated with the base in force
when they were written and cannot be rotated again, so the base is computed once,
for the length given as `context_length` in the parameters (the session's num_ctx;
the trained length when absent) and kept for the whole session. transformers
instead recomputes it as the sequence grows, which only agrees with this for a
sequence scored in one pass at that length.
"""

import math

import torch

SUPPORTED_ROPE_TYPES = ("default", "linear", "dynamic", "yarn", "llama3")


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
    if params["rope_type"] != "default":
        params.setdefault("original_max_position_embeddings", config.get("max_position_embeddings", 2048))
    return params


def scaled_config(config: dict, scaling: dict, num_ctx: int | None = None) -> dict:
    """`config` (a config.json) with a build's `rope_scaling` (prompting.build.RopeScaling
    as a dict) as its rope parameters; `num_ctx` is the length a `dynamic` base is
    computed for. ValueError for a model whose rope is scaled already."""
    params = rope_parameters(config)
    if params["rope_type"] != "default":
        raise ValueError(f"the model already scales its rotary embeddings ({params['rope_type']})")
    scaled = {"rope_type": scaling["type"], "rope_theta": params["rope_theta"], "factor": float(scaling["factor"]),
              "original_max_position_embeddings": scaling.get("original_max_position_embeddings")
              or config.get("max_position_embeddings", 2048)}
    scaled.update({k: float(scaling[k]) for k in ("beta_fast", "beta_slow", "attention_factor")
                   if scaling.get(k) is not None})
    if scaling["type"] == "dynamic" and num_ctx:
        scaled["context_length"] = int(num_ctx)
    return {**config, "rope_parameters": scaled, "rope_scaling": None}


def _yarn_inverse_frequencies(inv_freq: torch.Tensor, head_dim: int, params: dict) -> torch.Tensor:
    """Frequencies that turn more than `beta_fast` times over the trained length are
    kept, those that turn fewer than `beta_slow` times are divided by the factor, and
    a linear ramp over the dimensions blends the ones between."""
    theta, factor = float(params["rope_theta"]), float(params["factor"])
    trained = float(params["original_max_position_embeddings"])
    beta_fast, beta_slow = float(params.get("beta_fast") or 32), float(params.get("beta_slow") or 1)

    def dimension(turns: float) -> float:  # the dimension whose frequency makes `turns` turns over `trained`
        return head_dim * math.log(trained / (turns * 2 * math.pi)) / (2 * math.log(theta))

    low = max(math.floor(dimension(beta_fast)), 0)
    high = min(math.ceil(dimension(beta_slow)), head_dim - 1)
    if low == high:
        high += 0.001  # as transformers does: no division by zero
    ramp = ((torch.arange(head_dim // 2, dtype=torch.float64, device=inv_freq.device) - low) / (high - low)).clamp(0, 1)
    kept = 1 - ramp
    return inv_freq / factor * (1 - kept) + inv_freq * kept


def inverse_frequencies(head_dim: int, params: dict, device: torch.device | None = None) -> torch.Tensor:
    """The rotation frequency of each dimension pair, [head_dim // 2] float64, on `device`."""
    theta = float(params["rope_theta"])
    exponents = torch.arange(0, head_dim, 2, dtype=torch.float64, device=device) / head_dim
    inv_freq = 1.0 / (theta ** exponents)
    kind = params["rope_type"]
    if kind == "default":
        return inv_freq
    factor = float(params["factor"])
    if kind == "linear":
        return inv_freq / factor
    if kind == "dynamic":
        trained = float(params["original_max_position_embeddings"])
        length = max(float(params.get("context_length") or trained), trained)
        base = theta * ((factor * length / trained) - (factor - 1)) ** (head_dim / (head_dim - 2))
        return 1.0 / (base ** exponents)
    if kind == "yarn":
        return _yarn_inverse_frequencies(inv_freq, head_dim, params)
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


def attention_factor(params: dict) -> float:
    """What queries and keys are both multiplied by after rotation (1 but for YaRN,
    whose 0.1 ln(factor) + 1 sharpens attention that interpolation flattened; an
    `attention_factor` in the parameters overrides it)."""
    if params["rope_type"] != "yarn":
        return 1.0
    if params.get("attention_factor") is not None:
        return float(params["attention_factor"])
    factor = float(params["factor"])
    return 1.0 if factor <= 1 else 0.1 * math.log(factor) + 1.0


def rope_rotations(head_dim: int, params: dict, length: int, device: torch.device | None = None) -> torch.Tensor:
    """The rotation of each position as complex numbers, [length, head_dim // 2], of
    modulus `attention_factor(params)`: rotating q and k by them scales both, as
    transformers scales its cos and sin. Made on `device` (default the CPU)."""
    inv_freq = inverse_frequencies(head_dim, params, device).float()
    angles = torch.outer(torch.arange(length, dtype=torch.float32, device=device), inv_freq)
    return torch.polar(torch.full_like(angles, attention_factor(params)), angles)


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
