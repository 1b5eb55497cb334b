"""Choosing the next token: repetition, presence and frequency penalties,
temperature, top-k, top-p, seed.

The same order as llama.cpp's and transformers' default samplers: penalise
repeats (CTRL's penalty, then OpenAI's presence/frequency), scale by temperature, keep the top-k, then the smallest nucleus whose
probability reaches top-p, and draw. A temperature of 0 is greedy decoding.
"""

from dataclasses import dataclass

import numpy as np
import torch

from pimpmyllama.prompting.build import Parameters

# The defaults are a build's (Ollama's), declared and documented once in `Parameters`.
_DEFAULT = Parameters.model_fields


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = _DEFAULT["temperature"].default
    top_k: int = _DEFAULT["top_k"].default
    top_p: float = _DEFAULT["top_p"].default
    repeat_penalty: float = _DEFAULT["repeat_penalty"].default
    repeat_last_n: int = _DEFAULT["repeat_last_n"].default
    seed: int | None = _DEFAULT["seed"].default
    presence_penalty: float = _DEFAULT["presence_penalty"].default
    frequency_penalty: float = _DEFAULT["frequency_penalty"].default


def apply_repeat_penalty(logits: torch.Tensor, recent: list[int], penalty: float) -> torch.Tensor:
    """CTRL's penalty (transformers and llama.cpp do the same): shrink the logits of
    recently seen tokens towards 'less likely', dividing positive and multiplying
    negative ones."""
    if penalty == 1.0 or not recent:
        return logits
    # in numpy: a handful of torch operations on one row cost more in dispatch than in
    # arithmetic (the same float32 operations, to the bit)
    values = logits.numpy().copy()
    ids = np.fromiter(set(recent), dtype=np.int64)
    seen = values[ids]
    values[ids] = np.where(seen > 0, seen / np.float32(penalty), seen * np.float32(penalty))
    return torch.from_numpy(values)


def apply_presence_frequency(logits: torch.Tensor, generated: list[int], presence: float,
                             frequency: float) -> torch.Tensor:
    """OpenAI's penalties over the reply's tokens: each token's logit minus
    `presence` if it occurred and `frequency` times the number of times it did."""
    if (presence == 0 and frequency == 0) or not generated:
        return logits
    counts = torch.bincount(torch.tensor(generated, dtype=torch.long), minlength=logits.numel())[: logits.numel()]
    return logits - presence * (counts > 0).to(logits.dtype) - frequency * counts.to(logits.dtype)


def filter_top_k_top_p(logits: torch.Tensor, top_k: int, top_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(candidate logits, their token ids), sorted by decreasing logit."""
    if 0 < top_k < logits.numel():
        values, ids = torch.topk(logits, top_k)
    else:
        values, ids = torch.sort(logits, descending=True)
    if 0.0 < top_p < 1.0:
        cumulative = torch.softmax(values, dim=-1).cumsum(-1)
        # Keep every token up to and including the first one that reaches top_p.
        keep = int((cumulative < top_p).sum()) + 1
        values, ids = values[:keep], ids[:keep]
    return values, ids


class Sampler:
    def __init__(self, params: SamplingParams):
        self.params = params
        self._generator = torch.Generator()
        if params.seed is not None:
            self._generator.manual_seed(params.seed)
        else:
            self._generator.seed()

    def __call__(self, logits: torch.Tensor, generated_ids: list[int]) -> int:
        """Pick a token. The repeat penalty looks at the reply's own tokens only: a
        penalty over the prompt too (llama.cpp's and transformers' choice) pushes the
        model away from the very facts its system prompt or documents state."""
        p = self.params
        logits = logits.detach().float()
        recent = [] if p.repeat_last_n == 0 else generated_ids if p.repeat_last_n < 0 else generated_ids[-p.repeat_last_n :]
        if p.temperature <= 0 and p.presence_penalty == 0 and p.frequency_penalty == 0:
            # Greedy: a penalty of 1 or more only lowers the recent tokens' logits, so when
            # the first maximum is none of them it stays the first maximum (no penalised copy).
            best = int(logits.numpy().argmax())
            if p.repeat_penalty == 1.0 or not recent or (p.repeat_penalty > 1.0 and best not in recent):
                return best
        logits = apply_repeat_penalty(logits, recent, p.repeat_penalty)
        logits = apply_presence_frequency(logits, generated_ids, p.presence_penalty, p.frequency_penalty)
        if p.temperature <= 0:  # numpy's argmax: the same first maximum, ~10x faster than torch's on one row
            return int(logits.numpy().argmax())
        values, ids = filter_top_k_top_p(logits / p.temperature, p.top_k, p.top_p)
        choice = torch.multinomial(torch.softmax(values, dim=-1), 1, generator=self._generator)
        return int(ids[choice])
