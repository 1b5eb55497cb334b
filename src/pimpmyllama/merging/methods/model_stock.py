"""Model Stock: average the fine-tunes, then pull back towards the base by a factor
set by how aligned their task vectors are (Jang et al.): with N fine-tunes and mean
pairwise cosine c, t = N c / (1 + (N - 1) c); result = t·avg + (1 - t)·base."""

import torch

from pimpmyllama.merging.methods.base import MergeMethod, TensorInputs


def model_stock(inputs: TensorInputs) -> torch.Tensor:
    base = inputs.tensors[inputs.base]
    tuned = [t for i, t in enumerate(inputs.tensors) if i != inputs.base]
    shape = base.shape
    if inputs.params["filter_wise"]:  # one t per output row
        w0 = base if base.dim() > 1 else base.unsqueeze(0)
        ws = [w if w.dim() > 1 else w.unsqueeze(0) for w in tuned]
    else:
        w0, ws = base.reshape(-1), [w.reshape(-1) for w in tuned]
    offsets = [w - w0 for w in ws]
    cosines = []
    for i in range(len(offsets)):
        for j in range(i + 1, len(offsets)):
            norms = torch.linalg.vector_norm(offsets[i], dim=-1) * torch.linalg.vector_norm(offsets[j], dim=-1)
            cosines.append(((offsets[i] * offsets[j]).sum(dim=-1) / norms.clamp(min=1e-6)).clamp(-1, 1))
    c = torch.stack(cosines).mean(dim=0).unsqueeze(-1)
    n = len(ws)
    t = (n * c) / (1 + (n - 1) * c)
    average = sum(ws) / n
    return (t * average + (1 - t) * w0).reshape(shape)


METHOD = MergeMethod(
    name="model_stock",
    reference="https://arxiv.org/abs/2403.19522",
    merge=model_stock,
    parameters={"filter_wise": False},
    needs_base=True,
    others=(2, None),
)
