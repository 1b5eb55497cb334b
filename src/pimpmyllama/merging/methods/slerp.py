"""SLERP: spherical interpolation between a base model and one other, by `t`
(0 gives the base, 1 the other); nearly colinear tensors fall back to a straight
line, where the sphere's formula is unstable."""

import math

import torch

from pimpmyllama.merging.methods.base import REQUIRED, MergeMethod, TensorInputs

COLINEAR = 0.9995


def slerp_tensors(t: float, a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    a32, b32 = a.float(), b.float()
    na, nb = torch.linalg.vector_norm(a32), torch.linalg.vector_norm(b32)
    ua = a32 / na if na > eps else a32
    ub = b32 / nb if nb > eps else b32
    dot = float((ua * ub).sum())
    if abs(dot) > COLINEAR:
        return ((1 - t) * a32 + t * b32).to(a.dtype)
    theta = math.acos(dot)
    s = math.sin(theta)
    return ((math.sin(theta - theta * t) / s) * a32 + (math.sin(theta * t) / s) * b32).to(a.dtype)


def slerp(inputs: TensorInputs) -> torch.Tensor:
    if len(inputs.tensors) == 1:
        return inputs.tensors[0]
    other = 1 - inputs.base
    return slerp_tensors(float(inputs.params["t"]), inputs.tensors[inputs.base], inputs.tensors[other])


METHOD = MergeMethod(
    name="slerp",
    reference="https://en.wikipedia.org/wiki/Slerp",
    merge=slerp,
    parameters={"t": REQUIRED},
    needs_base=True,
    others=(1, 1),
)
