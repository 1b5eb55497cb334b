"""The one place where training loss is computed and normalised, and throughput
counted; every recipe (SFT, pre-training, one process or several) calls it."""

import time
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from pimpmyllama.training.packing import Batch
from pimpmyllama.training.tokenize import IGNORE


class CausalLMLoss(torch.nn.Module):
    """Summed cross-entropy over the positions that have a target.

    The output head runs only on those positions: in chat data most tokens are
    prompt, and the head (vocabulary x hidden) is a large share of the compute.
    Wrapping this module (not the bare model) in DDP keeps gradient sync working.
    """

    def __init__(self, causal_lm: torch.nn.Module):
        super().__init__()
        self.lm = causal_lm

    def forward(self, input_ids, position_ids, attention_mask, targets):
        hidden = self.lm.model(input_ids=input_ids, position_ids=position_ids,
                               attention_mask=attention_mask).last_hidden_state
        keep = targets != IGNORE
        hidden, targets = hidden[keep], targets[keep]
        if torch.is_grad_enabled():
            return F.cross_entropy(self.lm.lm_head(hidden).float(), targets, reduction="sum")
        # Evaluation: vocabulary-sized logits a slice at a time, to bound memory.
        return sum(
            (F.cross_entropy(self.lm.lm_head(hidden[i : i + 256]).float(), targets[i : i + 256], reduction="sum")
             for i in range(0, len(targets), 256)),
            hidden.new_zeros((), dtype=torch.float32),
        )


def autocast_for(device: torch.device):
    """bf16 autocast on a GPU (fp32 weights and optimizer, bf16 products); nothing on the CPU,
    whose training stays fp32 as it was."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


def batch_loss(module: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """The summed loss of `batch`, moved to the device of `module`'s weights, under
    autocast_for that device."""
    device = next(module.parameters()).device
    batch = batch.to(device)
    with autocast_for(device):
        return module(batch.input_ids, batch.position_ids, batch.attention_mask, batch.targets)


def normalise(loss_sum: torch.Tensor, global_trained_tokens: int, world_size: int = 1) -> torch.Tensor:
    """Mean loss per trained token over the whole optimizer step (all micro-batches and
    all processes). DDP averages gradients over processes, hence the world size."""
    return loss_sum * world_size / max(global_trained_tokens, 1)


@dataclass
class Throughput:
    """Trained tokens (positions with a target) and real tokens processed per second."""

    started: float = field(default_factory=time.perf_counter)
    tokens: int = 0
    trained_tokens: int = 0

    def add(self, batch: Batch) -> None:
        self.tokens += batch.tokens
        self.trained_tokens += batch.trained_tokens

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    @property
    def trained_tokens_per_second(self) -> float:
        return self.trained_tokens / self.seconds if self.seconds > 0 else 0.0
