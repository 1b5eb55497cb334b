"""FSDP (version 2: parameters as DTensors sharded over the processes) for the training
loop, through `accelerate launch --config_file <training.accelerate.fsdp_config_path()>`.

accelerate shards the module (one unit per Llama decoder layer, the rest in the root),
and gives backward, gradient clipping and the full state dict. What a checkpoint needs
beyond that (the optimizer state as whole tensors, and loading both back into the
shards) comes from torch.distributed.checkpoint's state-dict helpers, which accept any
module, wrapped or not. The sharding itself is passed in (`Sharder`), so the same loop
runs under torch's own `fully_shard` on CPU processes in the tests, where accelerate
does not run FSDP.
"""

import os
from contextlib import nullcontext
from typing import Protocol

import torch

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.training.wrapping import MakeOptimizer, check_fits, trainable


def fsdp_requested() -> bool:
    """accelerate launch with an FSDP config says so in the environment it gives."""
    return os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("true", "1")


def check_fsdp_launch(device: torch.device) -> None:
    """An FSDP launch the loop cannot run is refused in one line: FSDP on the CPU
    (accelerate would quietly fall back to DDP, a whole model per process) and FSDP
    version 1. Anything else passes."""
    if not fsdp_requested():
        return
    if device.type != "cuda":
        raise InvalidInputError(f"FSDP runs on GPUs (accelerate does not shard on the CPU), but this run is on "
                                f"{device.type}; on the CPU launch with torchrun (DDP)")
    version = os.environ.get("FSDP_VERSION", "1")
    if version != "2":
        raise InvalidInputError(f"the training loop runs FSDP version 2, not {version}: use the shipped config "
                                f"(`pml train fsdp-config`) or set fsdp_version: 2 in yours")


class Sharder(Protocol):
    """What shards the module: accelerate's Accelerator, or torch's fully_shard in tests."""

    def prepare(self, module, make_optimizer: MakeOptimizer): ...
    def backward(self, loss: torch.Tensor) -> None: ...
    def clip_grad_norm(self, params, max_norm: float) -> torch.Tensor: ...
    def full_state_dict(self, module) -> dict[str, torch.Tensor]: ...


class AccelerateSharder:
    """accelerate's Accelerator, its FSDP plugin read from what `accelerate launch` set."""

    def __init__(self, accelerator=None):
        if accelerator is None:
            from accelerate import Accelerator

            accelerator = Accelerator()
        self.accelerator = accelerator

    def prepare(self, module, make_optimizer: MakeOptimizer):
        # accelerate swaps the optimizer's parameters for the shards: model and optimizer in one call.
        return self.accelerator.prepare(module, make_optimizer(trainable(module)))

    def backward(self, loss: torch.Tensor) -> None:
        self.accelerator.backward(loss)

    def clip_grad_norm(self, params, max_norm: float) -> torch.Tensor:
        return self.accelerator.clip_grad_norm_(params, max_norm)

    def full_state_dict(self, module) -> dict[str, torch.Tensor]:
        return self.accelerator.get_state_dict(module, unwrap=False)


def whole(value):
    """A DTensor gathered into a plain tensor (a collective); anything else as it is."""
    from torch.distributed.tensor import DTensor

    return value.full_tensor() if isinstance(value, DTensor) else value


def inner(optimizer):
    """The torch optimizer inside accelerate's AcceleratedOptimizer."""
    return getattr(optimizer, "optimizer", optimizer)


class Fsdp:
    """Parameters, gradients and optimizer state sharded over the processes.

    Gradients are reduce-scattered after every micro-batch (no no-sync): keeping
    unsharded gradients between micro-batches would undo the memory FSDP saves. The
    reduction averages over processes as DDP does, so the loss is normalised the same.
    """

    shards = True

    def __init__(self, sharder: Sharder):
        self.sharder = sharder

    def prepare(self, module, device, make_optimizer: MakeOptimizer):
        # The model stays where it was loaded: sharding moves each process's shards to its device.
        return self.sharder.prepare(module, make_optimizer)

    def micro_batch(self, module, last: bool):
        return nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        self.sharder.backward(loss)

    def clip_grad_norm(self, params, max_norm: float) -> float:
        return float(whole(self.sharder.clip_grad_norm(params, max_norm)))

    def trainable_state(self, module) -> dict[str, torch.Tensor]:
        """Every trainable parameter, whole, by its name in `module`, on the main process
        (the others get {})."""
        names = {n for n, p in module.named_parameters() if p.requires_grad}
        full = self.sharder.full_state_dict(module)
        return {n: v.detach().clone() for n, v in full.items() if n in names}

    def optimizer_state(self, module, optimizer) -> dict:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        return get_optimizer_state_dict(module, inner(optimizer),
                                        options=StateDictOptions(full_state_dict=True, cpu_offload=True))

    def load_state(self, module, optimizer, weights: dict, optimizer_state: dict, where) -> None:
        """Whole tensors (every process read the same checkpoint) into this process's shards."""
        from torch.distributed.checkpoint.state_dict import (StateDictOptions, set_model_state_dict,
                                                             set_optimizer_state_dict)

        check_fits(dict(module.named_parameters()), weights, optimizer_state, self.shards, where)
        options = StateDictOptions(full_state_dict=True, strict=False)
        set_model_state_dict(module, dict(weights), options=options)  # a copy: it is consumed
        set_optimizer_state_dict(module, inner(optimizer), optimizer_state, options=options)
