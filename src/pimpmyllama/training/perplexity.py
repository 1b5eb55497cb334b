"""Perplexity: exp of the mean loss per predicted token, on held-out examples (what a
run should gain) and on a general reference text (what it may forget)."""

import math
import sysconfig
from pathlib import Path

import torch

from pimpmyllama.training.loss import batch_loss
from pimpmyllama.training.packing import collate, one_per_row
from pimpmyllama.training.tokenize import ExampleEncoder, TokenizedExample, text_blocks
from pimpmyllama.training.formats import TextExample


def default_general_text() -> Path:
    """A real English text every Python installation has: CPython's LICENSE.txt
    (its first part is the history of Python, in prose)."""
    return Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt"


def general_examples(encoder: ExampleEncoder, path: Path, block: int) -> list[TokenizedExample]:
    text = path.read_text(encoding="utf-8", errors="replace")
    return text_blocks([encoder.encode_text(TextExample(text, str(path)))], block)


@torch.no_grad()
def perplexity(loss_module, examples: list[TokenizedExample], pad_id: int, batch_size: int = 4) -> float | None:
    if not examples:
        return None
    total, count = 0.0, 0
    was_training = loss_module.training
    loss_module.eval()
    try:
        rows = one_per_row(examples)
        for start in range(0, len(rows), batch_size):
            batch = collate(rows[start : start + batch_size], pad_id)
            total += float(batch_loss(loss_module, batch))
            count += batch.trained_tokens
    finally:
        loss_module.train(was_training)
    return math.exp(total / count) if count else None
