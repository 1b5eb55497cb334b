"""Linear: a weighted average of the models (Wortsman et al., "Model soups")."""

import torch

from pimpmyllama.merging.methods.base import REQUIRED, MergeMethod, TensorInputs


def linear(inputs: TensorInputs) -> torch.Tensor:
    # accumulated in place: one output tensor besides the inputs, never a stack of them
    weights = [p["weight"] for p in inputs.model_params]
    merged = inputs.tensors[0] * weights[0]
    for tensor, weight in zip(inputs.tensors[1:], weights[1:]):
        merged.add_(tensor, alpha=weight)
    if inputs.params["normalize"]:
        merged /= sum(weights)
    return merged


METHOD = MergeMethod(
    name="linear",
    reference="https://arxiv.org/abs/2203.05482",
    merge=linear,
    parameters={"normalize": True},
    tensor_parameters={"weight": REQUIRED},
)
