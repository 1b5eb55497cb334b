"""`pml data check`: what a dataset looks like to the trainer, before training."""

from dataclasses import dataclass
from pathlib import Path

from pimpmyllama.prompting.format import ChatFormat
from pimpmyllama.training.dataset import load_examples
from pimpmyllama.training.tokenize import ExampleEncoder


@dataclass
class DataReport:
    format: str
    examples: int
    lengths: list[int]  # tokens per example
    trained: int  # tokens with a label
    too_long: int  # examples over max_length (dropped at training)
    max_length: int

    def histogram(self, bins: int = 8) -> list[tuple[int, int, int]]:
        """(low, high, count) over equal-width bins of example length."""
        low, high = min(self.lengths), max(self.lengths)
        width = max(1, -(-(high - low + 1) // bins))
        counts = [0] * bins
        for n in self.lengths:
            counts[min((n - low) // width, bins - 1)] += 1
        return [(low + i * width, low + (i + 1) * width - 1, c) for i, c in enumerate(counts) if low + i * width <= high]


def inspect_data(paths: list[Path], chat_format: ChatFormat, max_length: int) -> DataReport:
    fmt, examples = load_examples(paths)
    encoder = ExampleEncoder(chat_format)
    encoded = [encoder.encode(e) for e in examples]
    lengths = [len(e) for e in encoded]
    return DataReport(
        format=fmt,
        examples=len(encoded),
        lengths=lengths,
        trained=sum(e.trained_tokens for e in encoded),
        too_long=sum(1 for n in lengths if n > max_length),
        max_length=max_length,
    )
