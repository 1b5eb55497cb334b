"""`--device`, shared by the commands that load a model or an embedder (devices.py)."""

import typer

DEVICE = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N (default: $PML_DEVICE, else auto: "
                                             "the GPU where PyTorch sees one)")


def use(device: str | None) -> None:
    """`device` as this process's default, checked now: a wrong one fails before any loading."""
    if device is not None:
        from pimpmyllama.devices import use_device

        use_device(device)
