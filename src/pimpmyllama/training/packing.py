"""Packing short examples into rows of up to `max_length` tokens, without letting
them see each other: position ids restart at every example and the attention mask
is block-diagonal (each token attends to earlier tokens of its own example only),
so a packed row computes exactly what its examples would alone, minus the padding.
"""

import bisect
import dataclasses
from dataclasses import dataclass

import torch

from pimpmyllama.training.tokenize import IGNORE, TokenizedExample


@dataclass
class Row:
    examples: list[TokenizedExample]

    def __len__(self) -> int:
        return sum(len(e) for e in self.examples)

    @property
    def trained_tokens(self) -> int:
        """Positions with a target (what `collate` will count): within each example,
        position t predicts label t+1."""
        return sum(1 for e in self.examples for label in e.labels[1:] if label != IGNORE)


def pack(examples: list[TokenizedExample], max_length: int) -> list[Row]:
    """Best-fit decreasing: longest examples first, each into the fullest row it fits."""
    order = sorted(range(len(examples)), key=lambda i: (-len(examples[i]), i))
    rows: list[Row] = []
    free: list[tuple[int, int]] = []  # (space left, row index), sorted
    for i in order:
        example = examples[i]
        if len(example) > max_length:
            raise ValueError(f"{example.origin}: {len(example)} tokens > max_length {max_length}")
        slot = bisect.bisect_left(free, (len(example), -1))
        if slot < len(free):
            space, row_index = free.pop(slot)
            rows[row_index].examples.append(example)
            bisect.insort(free, (space - len(example), row_index))
        else:
            rows.append(Row([example]))
            bisect.insort(free, (max_length - len(example), len(rows) - 1))
    return rows


def one_per_row(examples: list[TokenizedExample]) -> list[Row]:
    """No packing: each example alone in its row (padded in the batch)."""
    return [Row([e]) for e in examples]


@dataclass
class Batch:
    input_ids: torch.Tensor  # [B, T]
    position_ids: torch.Tensor  # [B, T]
    attention_mask: torch.Tensor  # [B, 1, T, T] bool, True where attention is allowed
    targets: torch.Tensor  # [B, T]: the token each position must predict, or IGNORE
    tokens: int  # real (non-padding) tokens
    trained_tokens: int  # positions with a target

    def to(self, device: torch.device) -> "Batch":
        """The same batch with its tensors on `device` (itself where they are there already)."""
        if self.input_ids.device == device:
            return self
        return dataclasses.replace(self, **{name: getattr(self, name).to(device, non_blocking=True)
                                            for name in ("input_ids", "position_ids", "attention_mask", "targets")})


def collate(rows: list[Row], pad_id: int) -> Batch:
    width = max(len(r) for r in rows)
    B = len(rows)
    input_ids = torch.full((B, width), pad_id, dtype=torch.long)
    labels = torch.full((B, width), IGNORE, dtype=torch.long)
    positions = torch.zeros((B, width), dtype=torch.long)
    segments = torch.zeros((B, width), dtype=torch.long)  # 0 = padding
    for b, row in enumerate(rows):
        start = 0
        for s, example in enumerate(row.examples, start=1):
            n = len(example)
            input_ids[b, start : start + n] = torch.tensor(example.input_ids)
            labels[b, start : start + n] = torch.tensor(example.labels)
            positions[b, start : start + n] = torch.arange(n)
            segments[b, start : start + n] = s
            start += n
    same = segments[:, :, None] == segments[:, None, :]
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    mask = same & causal & (segments[:, :, None] > 0)
    # Padding queries attend to themselves only: a row with nothing to attend to
    # would make the softmax produce NaN (their outputs are never used).
    mask |= torch.eye(width, dtype=torch.bool)
    # Position t predicts token t+1, unless t+1 starts another example (or is padding).
    targets = torch.full_like(labels, IGNORE)
    targets[:, :-1] = labels[:, 1:]
    boundary = segments[:, 1:] != segments[:, :-1]
    targets[:, :-1][boundary] = IGNORE
    return Batch(
        input_ids=input_ids,
        position_ids=positions,
        attention_mask=mask[:, None],
        targets=targets,
        tokens=int((segments > 0).sum()),
        trained_tokens=int((targets != IGNORE).sum()),
    )
