"""Sharders for the FSDP tests: torch's own FSDP2 on CPU processes, and a Ctrl-C at a
chosen step around any sharder."""

import torch
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from torch.distributed.fsdp import fully_shard

from pimpmyllama.training.wrapping import trainable


class TorchSharder:
    """accelerate's FSDP2 preparation reduced to torch: a unit per decoder layer, the rest
    (embedding, final norm, head, the loss module) in the root unit."""

    def prepare(self, module, make_optimizer):
        for layer in module.lm.model.layers:
            fully_shard(layer)
        fully_shard(module)
        return module, make_optimizer(trainable(module))

    def backward(self, loss):
        loss.backward()

    def clip_grad_norm(self, params, max_norm):
        return torch.nn.utils.clip_grad_norm_(params, max_norm)

    def full_state_dict(self, module):
        return get_model_state_dict(module, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


class CtrlCAtClip:
    """`sharder`, with a Ctrl-C at its `at`-th gradient clipping (counted from 1): after
    that step's backward, before its optimizer step."""

    def __init__(self, sharder, at: int):
        self.sharder, self.calls, self.at = sharder, 0, at

    def __getattr__(self, name):
        return getattr(self.sharder, name)

    def clip_grad_norm(self, params, max_norm):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return self.sharder.clip_grad_norm(params, max_norm)
