"""NuSLERP: SLERP between two models weighted by their `weight`s, either over the
whole tensor or row by row; with a base model, between their task vectors."""

import torch

from pimpmyllama.merging.methods.base import REQUIRED, MergeMethod, TensorInputs


def nuslerp_tensors(t: float, a: torch.Tensor, b: torch.Tensor, row_wise: bool, flatten: bool,
                    eps: float = 1e-8) -> torch.Tensor:
    shape = a.shape
    if flatten:
        a, b = a.reshape(-1), b.reshape(-1)
    elif row_wise:
        a, b = a.transpose(0, -1), b.transpose(0, -1)

    def unit(x):
        return x / torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp(min=1e-7)

    cos = (unit(a) * unit(b)).sum(dim=-1, keepdim=True).clamp(-1, 1)
    theta = torch.acos(cos)
    sin = torch.sin(theta)
    out = (torch.sin((1 - t) * theta) * a + torch.sin(t * theta) * b) / sin
    straight = (sin.abs() < eps).squeeze(-1)
    out[straight] = (1 - t) * a[straight] + t * b[straight]
    if row_wise and not flatten:
        out = out.transpose(0, -1)
    return out.reshape(shape)


def nuslerp(inputs: TensorInputs) -> torch.Tensor:
    if len(inputs.tensors) == 1:
        return inputs.tensors[0]
    others = [i for i in range(len(inputs.tensors)) if i != inputs.base]
    w0, w1 = (inputs.model_params[i]["weight"] for i in others)
    t = 0.5 if abs(w0 + w1) < 1e-6 else w1 / (w0 + w1)
    a, b = (inputs.tensors[i] for i in others)
    row_wise, flatten = inputs.params["nuslerp_row_wise"], inputs.params["nuslerp_flatten"]
    if inputs.base is None:
        return nuslerp_tensors(t, a, b, row_wise, flatten)
    base = inputs.tensors[inputs.base]
    return base + nuslerp_tensors(t, a - base, b - base, row_wise, flatten)


METHOD = MergeMethod(
    name="nuslerp",
    reference="https://github.com/arcee-ai/mergekit/blob/main/docs/merge_methods.md",
    merge=nuslerp,
    parameters={"nuslerp_row_wise": False, "nuslerp_flatten": True},
    tensor_parameters={"weight": REQUIRED},
    others=(2, 2),
)
