"""Which devices the tensors an operation produces are on: a TorchFunctionMode that
sees every torch function and tensor method called from Python (factories such as
torch.tensor/zeros/arange included) and records the device of each tensor it returns."""

import torch
from torch.overrides import TorchFunctionMode


def _tensors(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)


class DeviceRecorder(TorchFunctionMode):
    """`seen`: (operation name, device) for every tensor an operation returned."""

    def __init__(self):
        super().__init__()
        self.seen: list[tuple[str, torch.device]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", repr(func))
        self.seen.extend((name, t.device) for t in _tensors(out))
        return out

    def off(self, device: torch.device) -> list[tuple[str, torch.device]]:
        """The operations whose output was not on `device`."""
        return [(name, d) for name, d in self.seen if d != device]


def record(run) -> DeviceRecorder:
    """`run()` under a recorder; what it recorded, also when `run` raised (the error is
    kept as `recorder.error`)."""
    recorder = DeviceRecorder()
    recorder.error = None
    with recorder:
        try:
            run()
        except Exception as exc:  # a tensor on the wrong device often fails the next operation
            recorder.error = exc
    return recorder
