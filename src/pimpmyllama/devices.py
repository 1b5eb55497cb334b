"""Which device the engine, training, the embedder and merging run on.

One resolver: `resolve_device(name)` for `auto | cpu | cuda | cuda:N`. Where no name is
given, the process default applies (`use_device`, what a command's `--device` sets),
else `$PML_DEVICE`, else `auto`: CUDA where PyTorch sees a GPU, the CPU otherwise.
Under `torchrun` / `accelerate launch` (LOCAL_RANK set) a bare `cuda` is the rank's own
GPU, `cuda:LOCAL_RANK`. A device that is unknown or not present is refused in one line
(a `PmlError`), never a traceback from deep inside PyTorch.

torch is imported inside the functions: `pml --help` does not pay for it.
"""

import os
import re

from pimpmyllama.errors import InvalidInputError

DEVICE_CHOICES = ("auto", "cpu", "cuda")
_FORM = re.compile(r"^(auto|cpu|cuda)(:\d+)?$")

_process_default: str | None = None


def check_device_name(name: str) -> str:
    """`name` as given, or a one-line refusal naming the known forms."""
    text = name.strip().lower()
    if not _FORM.match(text) or (text.startswith(("auto", "cpu")) and ":" in text):
        raise InvalidInputError(f"unknown device {name!r} (known: auto, cpu, cuda, cuda:N)")
    return text


def use_device(name: str | None) -> None:
    """The device every later `resolve_device(None)` in this process gives (None: back to
    $PML_DEVICE / auto); checked now, so a wrong `--device` fails before any loading."""
    global _process_default
    if name is not None:
        resolve_device(name)
    _process_default = None if name is None else check_device_name(name)


def requested_device() -> str:
    """The name in force when none is passed: the process default, $PML_DEVICE, or auto."""
    return _process_default or os.environ.get("PML_DEVICE") or "auto"


def local_rank() -> int | None:
    """This process's rank on its machine under torchrun / accelerate launch, else None."""
    value = os.environ.get("LOCAL_RANK")
    return int(value) if value not in (None, "") else None


def resolve_device(name=None):
    """A `torch.device` for `name` (a string, a torch.device, or None for the default in
    force). `auto`: cuda if available, else cpu; `cuda` under a launcher: cuda:LOCAL_RANK."""
    import torch

    if isinstance(name, torch.device):
        return name
    text = check_device_name(name if name is not None else requested_device())
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    if text == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise InvalidInputError(f"device {text!r} asked for, but PyTorch sees no CUDA GPU here "
                                f"(torch {torch.__version__}, built {'with' if torch.version.cuda else 'without'} CUDA); "
                                "use --device cpu")
    index = int(text.split(":")[1]) if ":" in text else (local_rank() or 0)
    if index >= torch.cuda.device_count():
        raise InvalidInputError(f"device cuda:{index} asked for, but PyTorch sees {torch.cuda.device_count()} GPU(s)")
    return torch.device("cuda", index)
