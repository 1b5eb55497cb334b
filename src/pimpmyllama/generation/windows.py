"""Scoring a window of tokens with the engine's own forward: the loss of each token
given the ones before it in the window, computed in prefill chunks so that neither
activations nor logits grow with the window (one chunk's logits at a time, and
attention through PyTorch's fused SDPA, which never holds a window × window matrix)."""

import torch

from pimpmyllama.generation.sequence import PREFILL_CHUNK


@torch.inference_mode()
def token_losses(backend, ids: list[int], chunk: int = PREFILL_CHUNK) -> torch.Tensor:
    """-log p(ids[t] | ids[:t]) for t = 1 .. len(ids) - 1 ([len(ids) - 1], float64), run
    from an empty cache of len(ids) positions."""
    cache = backend.new_cache(len(ids))
    losses = []
    for begin in range(0, len(ids), chunk):
        piece = ids[begin : begin + chunk]
        logits = backend.forward(piece, cache, begin, all_logits=True).reshape(len(piece), -1)
        targets = ids[begin + 1 : begin + len(piece) + 1]  # the window's last token predicts nothing
        logprobs = torch.log_softmax(logits[: len(targets)].float(), dim=-1)
        losses.append(-logprobs.gather(1, torch.tensor(targets)[:, None])[:, 0].double())
    return torch.cat(losses)
