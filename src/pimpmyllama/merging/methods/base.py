"""What every merge method declares: its parameters and how many models it takes."""

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

REQUIRED = object()  # marks a parameter without a default


@dataclass
class TensorInputs:
    """One output tensor's inputs, as a method receives them."""

    name: str
    tensors: list[torch.Tensor]  # one per source model, in recipe order
    base: int | None  # index of the base model's tensor, if any
    params: dict  # the method's global parameters, evaluated for this tensor
    model_params: list[dict]  # per source model, evaluated for this tensor
    generator: torch.Generator | None = None


@dataclass(frozen=True)
class MergeMethod:
    name: str
    reference: str
    merge: Callable[[TensorInputs], torch.Tensor]
    parameters: dict = field(default_factory=dict)  # global: name -> default (or REQUIRED)
    tensor_parameters: dict = field(default_factory=dict)  # per model: name -> default (or REQUIRED)
    needs_base: bool = False
    others: tuple[int, int | None] = (1, None)  # how many models besides the base (min, max)
    random: bool = False
    passthrough: bool = False  # copies (scaled) one input: used for layer stacking
