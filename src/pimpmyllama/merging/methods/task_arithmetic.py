"""The task-vector family: each model's difference from the base (its task vector) is
optionally sparsified, optionally made to agree in sign, weighted, and added back.

- task_arithmetic: base + λ Σ wᵢ δᵢ  (Ilharco et al.)
- ties: keep the top `density` of each δ by magnitude, elect a sign per entry by
  total weighted mass, average the agreeing entries (Yadav et al.)
- dare_linear / dare_ties: drop entries at random, keep `density`, rescale (Yu et al.)
- breadcrumbs / breadcrumbs_ties: drop the largest `gamma` and the smallest (Davari & Belilovsky)
- della / della_linear: drop with probabilities by magnitude rank, `epsilon` wide (Deep et al.)

`int8_mask` is mergekit's: there it stores the sign-agreement masks in int8 instead of
the tensors' dtype, to save memory, and changes no value. Here each agreement mask is
a bool tensor (one byte per entry), made and dropped one model at a time, so the
saving is always taken: the parameter is accepted, so mergekit recipes run
unchanged, and either value gives the same tensors (tested against mergekit).
"""

from functools import partial

import torch

from pimpmyllama.merging import sparsify
from pimpmyllama.merging.methods.base import REQUIRED, MergeMethod, TensorInputs


def task_vector_merge(inputs: TensorInputs, *, sparsifier: str | None, sign_consensus: bool) -> torch.Tensor:
    # In place wherever it can be: the inputs are this merge's own copies, and peak
    # memory should stay near one tensor per model.
    base = inputs.tensors[inputs.base]
    others = [i for i in range(len(inputs.tensors)) if i != inputs.base]
    if not others:
        return base
    rescale = inputs.params["rescale"]
    deltas, weights = [], []
    for i in others:
        p = inputs.model_params[i]
        delta = inputs.tensors[i].to(base.dtype).sub_(base)
        density = p["density"]
        if sparsifier == "magnitude":
            delta = sparsify.keep_largest(delta, density, rescale)
        elif sparsifier == "random":
            delta = sparsify.keep_random(delta, density, inputs.generator, rescale)
        elif sparsifier == "outliers":
            delta = sparsify.keep_middle(delta, density, p["gamma"], rescale)
        elif sparsifier == "rank":
            delta = sparsify.keep_by_rank(delta, density, p["epsilon"], inputs.generator, rescale)
        deltas.append(delta.mul_(p["weight"]))
        weights.append(p["weight"])
    if sign_consensus:
        # Each entry's sign is elected by the total weighted mass; only the entries
        # that agree with it (zero agrees with nothing) are averaged.
        positive = sum(deltas) >= 0
        mixed, divisor = torch.zeros_like(base), torch.zeros_like(base)
        for delta, weight in zip(deltas, weights):
            agree = torch.where(positive, delta > 0, delta < 0)
            mixed += delta * agree
            divisor += agree * weight
        divisor[divisor == 0] = 1
    else:
        mixed = deltas[0]
        for delta in deltas[1:]:
            mixed += delta
        total = sum(weights)
        divisor = total if abs(total) >= 1e-8 else 1.0
    del deltas
    if inputs.params["normalize"]:
        mixed /= divisor
    if inputs.params["lambda"] != 1:
        mixed *= inputs.params["lambda"]
    return mixed.add_(base)


def _method(name, reference, sparsifier, sign_consensus, normalize, rescale, extra=None):
    tensor_parameters = {"weight": REQUIRED, "density": 1.0, **(extra or {})}
    return MergeMethod(
        name=name,
        reference=reference,
        merge=partial(task_vector_merge, sparsifier=sparsifier, sign_consensus=sign_consensus),
        # int8_mask: see the module docstring (the masks here are always one byte per entry).
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
