"""The task-vector family: each model's difference from the base (its task vector) is
optionally sparsified, optionally made to agree in sign, weighted, and added back.

- task_arithmetic: base + λ Σ wᵢ δᵢ  (Ilharco et al.)
- ties: keep the top `density` of each δ by magnitude, elect a sign per entry by
  total weighted mass, average the agreeing entries (Yadav et al.)
- dare_linear / dare_ties: drop entries at random, keep `density`, rescale (Yu et al.)
- breadcrumbs / breadcrumbs_ties: drop the largest `gamma` and the smallest (Davari & Belilovsky)
- della / della_linear: drop with probabilities by magnitude rank, `epsilon` wide (Deep et al.)
"""

from functools import partial

import torch

from pimpmyllama.merging import sparsify
from pimpmyllama.merging.methods.base import REQUIRED, MergeMethod, TensorInputs


def elect_sign(weighted: torch.Tensor) -> torch.Tensor:
    """Mask of the entries whose sign agrees with the sign of their column's total."""
    majority = torch.where(weighted.sum(dim=0) >= 0, 1.0, -1.0).to(weighted.dtype)
    return weighted.sign() == majority


def task_vector_merge(inputs: TensorInputs, *, sparsifier: str | None, sign_consensus: bool) -> torch.Tensor:
    base = inputs.tensors[inputs.base]
    others = [i for i in range(len(inputs.tensors)) if i != inputs.base]
    if not others:
        return base
    rescale = inputs.params["rescale"]
    deltas, weights = [], []
    for i in others:
        p = inputs.model_params[i]
        delta = inputs.tensors[i].to(base.dtype) - base
        density = p["density"]
        if sparsifier == "magnitude":
            delta = sparsify.keep_largest(delta, density, rescale)
        elif sparsifier == "random":
            delta = sparsify.keep_random(delta, density, inputs.generator, rescale)
        elif sparsifier == "outliers":
            delta = sparsify.keep_middle(delta, density, p["gamma"], rescale)
        elif sparsifier == "rank":
            delta = sparsify.keep_by_rank(delta, density, p["epsilon"], inputs.generator, rescale)
        deltas.append(delta)
        weights.append(p["weight"])
    stacked = torch.stack(deltas)
    w = torch.tensor(weights, dtype=stacked.dtype).view(-1, *([1] * (stacked.dim() - 1)))
    weighted = stacked * w
    if sign_consensus:
        agree = elect_sign(weighted).to(stacked.dtype)
        mixed = (weighted * agree).sum(dim=0)
        divisor = (w * agree).sum(dim=0)
        divisor[divisor == 0] = 1
    else:
        mixed = weighted.sum(dim=0)
        divisor = w.sum(dim=0).expand_as(mixed).clone()
        divisor[divisor.abs() < 1e-8] = 1
    if inputs.params["normalize"]:
        mixed = mixed / divisor
    if inputs.params["lambda"] != 1:
        mixed = mixed * inputs.params["lambda"]
    return (base + mixed).to(base.dtype)


def _method(name, reference, sparsifier, sign_consensus, normalize, rescale, extra=None):
    tensor_parameters = {"weight": REQUIRED, "density": 1.0, **(extra or {})}
    return MergeMethod(
        name=name,
        reference=reference,
        merge=partial(task_vector_merge, sparsifier=sparsifier, sign_consensus=sign_consensus),
        parameters={"normalize": normalize, "rescale": rescale, "lambda": 1.0, "int8_mask": False},
        tensor_parameters=tensor_parameters,
        needs_base=True,
        random=sparsifier in ("random", "rank"),
    )


METHODS = [
    _method("task_arithmetic", "https://arxiv.org/abs/2212.04089", None, False, False, False),
    _method("ties", "https://arxiv.org/abs/2306.01708", "magnitude", True, True, False),
    _method("dare_ties", "https://arxiv.org/abs/2311.03099", "random", True, False, True),
    _method("dare_linear", "https://arxiv.org/abs/2311.03099", "random", False, False, True),
    _method("breadcrumbs", "https://arxiv.org/abs/2312.06795", "outliers", False, False, False, {"gamma": 0.01}),
    _method("breadcrumbs_ties", "https://arxiv.org/abs/2312.06795", "outliers", True, False, False, {"gamma": 0.01}),
    _method("della", "https://arxiv.org/abs/2406.11617", "rank", True, True, True, {"epsilon": 0.15}),
    _method("della_linear", "https://arxiv.org/abs/2406.11617", "rank", False, False, True, {"epsilon": 0.15}),
]
