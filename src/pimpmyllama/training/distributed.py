"""Several processes under torchrun / accelerate launch: their process group, on the
gloo backend (CPU) or nccl (GPUs, each process on its own: devices.resolve_device gives
cuda:LOCAL_RANK). One process needs none of it. How the model is wrapped over them
(DDP, FSDP) is training/wrapping.py."""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


def is_main_process() -> bool:
    """Rank 0, or no launcher: read from the launcher's environment, before (and without)
    joining the process group, whose backend depends on the device the run takes."""
    return int(os.environ.get("RANK", "0")) == 0


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")  # where this process's collectives run

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: torch.device | None = None) -> "Distributed":
        """The launcher's process group, for a process training on `device` (default the
        CPU): nccl on a GPU (the process's current device set to it first), gloo on the CPU."""
        device = device or torch.device("cpu")
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls(device=device)
        if not dist.is_initialized():
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(dist.get_rank(), dist.get_world_size(), device)

    @property
    def device_ids(self) -> list[int] | None:
        """DDP's `device_ids`: this process's one GPU, or None on the CPU."""
        return [self.device.index] if self.device.type == "cuda" else None

    def sum(self, value: float) -> float:
        if self.world_size == 1:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)  # nccl reduces GPU tensors only
        dist.all_reduce(tensor)
        return float(tensor[0])

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def close(self) -> None:
        if self.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()
