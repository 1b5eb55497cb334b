"""Sparsifying task vectors before they are combined: keep the largest entries
(TIES), a random share (DARE), drop the outliers too (breadcrumbs), or drop with
probabilities that fall with magnitude rank (DELLA). Optionally rescale what is
kept so the vector's L1 norm is unchanged."""

import torch


def rescale_to_l1(original: torch.Tensor, kept: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    before, after = original.abs().sum(), kept.abs().sum()
    if before < eps or after < eps:
        return kept
    return kept * (before / after)


def _finish(delta: torch.Tensor, mask: torch.Tensor, rescale: bool) -> torch.Tensor:
    kept = delta * mask
    return rescale_to_l1(delta, kept) if rescale else kept


def keep_largest(delta: torch.Tensor, density: float, rescale: bool = False) -> torch.Tensor:
    """Keep the `density` share of entries with the largest magnitude."""
    if density >= 1:
        return delta
    k = int(density * delta.numel())
    if k <= 0:
        raise ValueError("density too small: it would keep nothing")
    mask = torch.zeros(delta.numel(), dtype=delta.dtype, device=delta.device)
    mask[torch.topk(delta.abs().reshape(-1).float(), k).indices] = 1
    return _finish(delta, mask.view_as(delta), rescale)


def keep_random(delta: torch.Tensor, density: float, generator: torch.Generator, rescale: bool = True) -> torch.Tensor:
    """Keep each entry with probability `density` (DARE's drop)."""
    if density >= 1:
        return delta
    # drawn on the CPU (the seeded generator's): the same mask on every device
    mask = torch.bernoulli(torch.full(delta.shape, float(density)), generator=generator).to(delta.device, delta.dtype)
    return _finish(delta, mask, rescale)


def keep_middle(delta: torch.Tensor, density: float, gamma: float, rescale: bool = False) -> torch.Tensor:
    """Breadcrumbs: drop the `gamma` share of largest entries, then the smallest, so
    that `density` of them remain."""
    if density >= 1:
        return delta
    n = delta.numel()
    keep = int(density * n)
    top = int(gamma * n)
    bottom = n - keep - top
    if bottom < 0:  # not enough room: drop fewer of the largest
        top += bottom
        bottom = 0
    order = torch.argsort(delta.abs().reshape(-1).float())
    mask = torch.zeros(n, dtype=delta.dtype, device=delta.device)
    mask[order[bottom : n - top]] = 1
    return _finish(delta, mask.view_as(delta), rescale)


def keep_by_rank(delta: torch.Tensor, density: float, epsilon: float, generator: torch.Generator,
                 rescale: bool = True) -> torch.Tensor:
    """DELLA: within each row, keep probability grows linearly with magnitude rank,
    from density - epsilon (smallest) to density + epsilon (largest)."""
    if density >= 1:
        return delta
    if not (0 < density - epsilon and density + epsilon < 1):
        raise ValueError(f"epsilon {epsilon} must keep density ± epsilon inside (0, 1)")
    rows = delta if delta.dim() >= 2 else delta.unsqueeze(0)
    ranks = rows.abs().float().argsort(dim=1).argsort(dim=1).float()
    width = max(rows.shape[1] - 1, 1)
    probabilities = (density - epsilon) + (ranks / width) * 2 * epsilon
    # drawn on the CPU (the seeded generator's): the same mask on every device
    mask = torch.bernoulli(probabilities.cpu(), generator=generator).to(delta.device, delta.dtype).reshape(delta.shape)
    return _finish(delta, mask, rescale)
