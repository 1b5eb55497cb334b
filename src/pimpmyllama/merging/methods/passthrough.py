"""Passthrough: copy one model's tensor (optionally scaled). With slices, this
stacks layers of several models into a deeper one ("frankenmerges")."""

import torch

from pimpmyllama.merging.methods.base import MergeMethod, TensorInputs


def passthrough(inputs: TensorInputs) -> torch.Tensor:
    if len(inputs.tensors) != 1:
        raise ValueError(f"{inputs.name}: passthrough takes exactly one model per slice")
    scale = inputs.model_params[0].get("scale")
    tensor = inputs.tensors[0]
    return tensor * scale if scale is not None else tensor


METHOD = MergeMethod(
    name="passthrough",
    reference="https://github.com/arcee-ai/mergekit/blob/main/docs/merge_methods.md",
    merge=passthrough,
    tensor_parameters={"scale": None},
    others=(1, 1),
    passthrough=True,
)
