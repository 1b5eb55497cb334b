"""What one optimizer step reports: the line written to metrics.jsonl and what the
caller's `on_step` callback receives.

Not a `pimpmyllama.progress.Progress`: a step carries numbers a bar alone cannot
hold (loss, learning rate, gradient norm, throughput), and the JSONL line of a run
is exactly these fields, in this order.
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class StepReport:
    step: int  # optimizer steps done, 1-based
    total_steps: int
    loss: float  # mean over the step's trained tokens, all processes
    lr: float
    grad_norm: float
    trained_tokens_per_second: float
    tokens_per_second: float
    elapsed: float  # seconds spent in forward/backward since the run (or resume) began

    def as_dict(self) -> dict:
        return asdict(self)


OnStep = Callable[[StepReport], None]
