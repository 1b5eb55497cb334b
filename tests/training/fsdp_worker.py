"""Run under torchrun by test_fsdp_processes.py: the training recipe with its model
sharded by PyTorch's own FSDP2 (`fully_shard`, which runs on CPU processes with gloo),
through the same `Fsdp` wrapping an `accelerate launch` with the FSDP config uses.

argv[1]: the training config (JSON) shared by the runs. Writes three results: `fsdp`
(a whole run), `cut` (interrupted with Ctrl-C during its 4th step, then resumed) and
`fsdp-full` (a full fine-tune).
"""

import json
import sys
from pathlib import Path

import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).parents[1]))  # the tests' helpers, as tests/conftest.py does
from sharding import CtrlCAtClip, TorchSharder  # noqa: E402

from pimpmyllama.training.config import TrainConfig
from pimpmyllama.training.distributed import Distributed
from pimpmyllama.training.fsdp import Fsdp
from pimpmyllama.training.recipe import TrainingInterrupted, train


def main() -> None:
    common = json.loads(sys.argv[1])
    # One process group for the three runs: each would otherwise close it at its end.
    Distributed.close = lambda self: None
    train(TrainConfig.model_validate({**common, "output": "fsdp"}), wrapping=Fsdp(TorchSharder()))
    try:
        train(TrainConfig.model_validate({**common, "output": "cut"}), wrapping=Fsdp(CtrlCAtClip(TorchSharder(), at=4)))
    except TrainingInterrupted as e:
        print(f"rank {dist.get_rank()}: {e}", flush=True)
    train(TrainConfig.model_validate({**common, "output": "cut"}), resume=True, wrapping=Fsdp(TorchSharder()))
    train(TrainConfig.model_validate({**common, "output": "fsdp-full", "method": "full"}), wrapping=Fsdp(TorchSharder()))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
