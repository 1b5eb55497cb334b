"""Checkpoints: everything needed to continue exactly where a run stopped (trainable
weights, optimizer, scheduler, random states, step), written atomically."""

import random
from pathlib import Path

import numpy as np
import torch

from pimpmyllama.atomic import atomic_dir, remove_dir_atomic
from pimpmyllama.errors import InvalidInputError


def trainable_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}


def save_checkpoint(folder: Path, step: int, module, optimizer, scheduler, extra: dict, keep: int = 2) -> Path:
    target = folder / f"step-{step:07d}"
    with atomic_dir(target, replace=True) as tmp:
        torch.save(
            {
                "step": step,
                "weights": trainable_state(module),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()},
                **extra,
            },
            tmp / "state.pt",
        )
    for old in sorted(p for p in folder.glob("step-*") if p.is_dir())[:-keep]:
        remove_dir_atomic(old)
    return target


def latest_checkpoint(folder: Path) -> Path | None:
    found = sorted(p for p in folder.glob("step-*") if (p / "state.pt").exists())
    return found[-1] if found else None


def load_checkpoint(path: Path, module, optimizer, scheduler) -> dict:
    state = torch.load(path / "state.pt", weights_only=False)
    named = dict(module.named_parameters())
    missing = [n for n in state["weights"] if n not in named]
    if missing:
        raise InvalidInputError(f"{path}: checkpoint does not fit this model (no parameter {missing[0]})")
    with torch.no_grad():
        for name, value in state["weights"].items():
            named[name].copy_(value)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["torch"])
    random.setstate(state["rng"]["python"])
    np.random.set_state(state["rng"]["numpy"])
    return state
