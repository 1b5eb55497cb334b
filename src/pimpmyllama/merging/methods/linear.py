"""Linear: a weighted average of the models (Wortsman et al., "Model soups")."""

import torch

from pimpmyllama.merging.methods.base import REQUIRED, MergeMethod, TensorInputs


def linear(inputs: TensorInputs) -> torch.Tensor:
    weights = torch.tensor([p["weight"] for p in inputs.model_params], dtype=inputs.tensors[0].dtype)
    stacked = torch.stack(inputs.tensors)
    weights = weights.view(-1, *([1] * (stacked.dim() - 1)))
    merged = (weights * stacked).sum(dim=0)
    if inputs.params["normalize"]:
        merged = merged / weights.sum(dim=0)
    return merged


METHOD = MergeMethod(
    name="linear",
    reference="https://arxiv.org/abs/2203.05482",
    merge=linear,
    parameters={"normalize": True},
    tensor_parameters={"weight": REQUIRED},
)
