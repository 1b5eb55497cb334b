"""Constrained decoding: which tokens a reply may take next.

A `Constraint` belongs to one reply (a `Sequence`); at each step the sequence asks it
for the tokens allowed, masks every other token's logit to -inf before sampling, and
tells it the token picked. When `finished`, nothing more may follow and the reply ends.
An end token is only picked when the constraint allows it (its grammar is complete).
The model's own log-probs (logprobs) are taken before the mask: they say what the
model thought, not what the grammar forced.

A `Grammar` is the request's side: immutable, shared by replies, `start`ed once per reply.
"""

from typing import Protocol

import torch


class Constraint(Protocol):
    finished: bool

    def allowed(self) -> torch.Tensor:
        """A bool mask over the tokenizer's ids: True where the token may come next."""

    def advance(self, token: int) -> None:
        """The token picked (one `allowed` permitted)."""


class Grammar(Protocol):
    def start(self, tokenizer) -> Constraint:
        """A fresh constraint for one reply."""


def mask_logits(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """`logits` with every token not `allowed` at -inf; ids beyond the mask (a model's
    padded vocabulary rows) are never allowed."""
    keep = torch.zeros(logits.shape[-1], dtype=torch.bool)
    n = min(allowed.numel(), keep.numel())
    keep[:n] = allowed[:n]
    return logits.masked_fill(~keep, float("-inf"))
