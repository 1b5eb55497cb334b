"""How the training loop's module is wrapped for the processes it runs in: not at all
(one process), DDP (every process holds the whole model; gradients all-reduced) or
FSDP (training/fsdp.py: parameters, gradients and optimizer state sharded).

The loop touches the wrapped module only through these methods: prepare it with its
optimizer, the context of each micro-batch, backward, gradient clipping, and the
trainable weights and optimizer state as whole tensors for checkpoints and the saved
artifact (on the main process; collectives, so every process calls them).
"""

from contextlib import nullcontext
from typing import Callable

import torch

from pimpmyllama.errors import InvalidInputError

MakeOptimizer = Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer]


def trainable(module: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


def check_fits(names, weights: dict, optimizer_state: dict, sharded: bool, where) -> None:
    """A checkpoint's weights name only parameters this module has, and its optimizer
    state is keyed as this wrapping keys it (FSDP by parameter name, else by position)."""
    missing = [n for n in weights if n not in names]
    if missing:
        raise InvalidInputError(f"{where}: checkpoint does not fit this model (no parameter {missing[0]})")
    by_name = any(isinstance(p, str) for group in optimizer_state.get("param_groups", []) for p in group["params"])
    if by_name != sharded:
        raise InvalidInputError(f"{where}: checkpoint of a run {'with' if by_name else 'without'} FSDP; "
                                f"resume it {'with' if by_name else 'without'} FSDP")


class Plain:
    """One process: the module as it is, on its device."""

    shards = False

    def prepare(self, module, device, make_optimizer: MakeOptimizer):
        module = module.to(device)
        return module, make_optimizer(trainable(module))

    def micro_batch(self, module, last: bool):
        return nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def clip_grad_norm(self, params, max_norm: float) -> float:
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))

    def trainable_state(self, module) -> dict[str, torch.Tensor]:
        """Every trainable parameter, whole, by its name in `module`."""
        return {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}

    def optimizer_state(self, module, optimizer) -> dict:
        return optimizer.state_dict()

    def load_state(self, module, optimizer, weights: dict, optimizer_state: dict, where) -> None:
        named = dict(module.named_parameters())
        check_fits(named, weights, optimizer_state, self.shards, where)
        with torch.no_grad():
            for name, value in weights.items():
                named[name].copy_(value)
        optimizer.load_state_dict(optimizer_state)


class Ddp(Plain):
    """Several processes, each with the whole model; gradients all-reduced once per
    optimizer step, on its last micro-batch."""

    def __init__(self, device_ids: list[int] | None):
        self.device_ids = device_ids

    def prepare(self, module, device, make_optimizer: MakeOptimizer):
        module = torch.nn.parallel.DistributedDataParallel(module.to(device), device_ids=self.device_ids)
        return module, make_optimizer(trainable(module))

    def micro_batch(self, module, last: bool):
        return nullcontext() if last else module.no_sync()

