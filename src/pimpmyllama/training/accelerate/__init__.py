"""accelerate launch configs shipped with the package (no heavy imports: the CLI prints
their paths)."""

from importlib import resources
from pathlib import Path


def fsdp_config_path() -> Path:
    """The FSDP config: version 2, one shard unit per LlamaDecoderLayer, full state dict,
    bf16; the number of processes given by `--num_processes` at launch."""
    return Path(str(resources.files(__name__) / "fsdp.yaml"))
