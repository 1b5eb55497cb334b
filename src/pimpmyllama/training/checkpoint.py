"""Checkpoints: everything needed to continue exactly where a run stopped (trainable
weights, optimizer, scheduler, random states, step), written atomically. The weights and
optimizer state come whole from the loop's wrapping (training/wrapping.py), so a sharded
run writes the same file as an unsharded one."""

import random
from pathlib import Path

import numpy as np
import torch

from pimpmyllama.atomic import atomic_dir, remove_dir_atomic


def save_checkpoint(folder: Path, step: int, weights: dict, optimizer_state: dict, scheduler, extra: dict,
                    keep: int = 2) -> Path:
    target = folder / f"step-{step:07d}"
    with atomic_dir(target, replace=True) as tmp:
        torch.save(
            {
                "step": step,
                "weights": weights,
                "optimizer": optimizer_state,
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


def load_checkpoint(path: Path, wrapping, module, optimizer, scheduler) -> dict:
    """The checkpoint at `path` loaded into the (wrapped) module, its optimizer and
    scheduler, and the random states restored; its whole content returned."""
    state = torch.load(path / "state.pt", weights_only=False)
    wrapping.load_state(module, optimizer, state["weights"], state["optimizer"], path)
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["torch"])
    random.setstate(state["rng"]["python"])
    np.random.set_state(state["rng"]["numpy"])
    return state
