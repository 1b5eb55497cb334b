"""The FSDP path in one process, where it can run on the CPU: the loop through
accelerate's Accelerator (its backward, clipping and state dict) trains exactly as the
plain loop and resumes from its checkpoints; the shipped accelerate config gives
accelerate's FSDP plugin our settings; what cannot run is refused in one line."""

import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from sharding import CtrlCAtClip

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.training.accelerate import fsdp_config_path
from pimpmyllama.training.fsdp import AccelerateSharder, Fsdp, check_fsdp_launch
from pimpmyllama.training.recipe import TrainingInterrupted, train


@pytest.fixture
def accelerator():
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState

    yield Accelerator(cpu=True)
    AcceleratorState._reset_state(reset_partial_state=True)  # no accelerate state left for other tests
    GradientState._reset_state()


def adapter(pml_home, name):
    return load_file(str(pml_home / "adapters" / name / "adapter_model.safetensors"))


def test_the_loop_through_accelerate_trains_as_the_plain_loop(train_config, pml_home, accelerator, short_text):
    config = train_config(output="plain", general_text=str(short_text), gradient_accumulation=1)
    plain = train(config)
    through = train(config.model_copy(update={"output": "through"}),
                    wrapping=Fsdp(AccelerateSharder(accelerator)))
    a, b = adapter(pml_home, "plain"), adapter(pml_home, "through")
    assert a.keys() == b.keys() and len(a) == 28  # 2 layers x 7 linear layers x (A, B)
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert through.metrics["after"] == plain.metrics["after"]


def test_interrupted_and_resumed_through_accelerate_equals_uninterrupted(train_config, pml_home, accelerator,
                                                                         short_text):
    config = train_config(output="cut", general_text=str(short_text), gradient_accumulation=1)
    train(config.model_copy(update={"output": "whole"}))
    with pytest.raises(TrainingInterrupted, match="^interrupted at step 2 of 4"):
        train(config, wrapping=Fsdp(CtrlCAtClip(AccelerateSharder(accelerator), at=3)))
    assert (pml_home / "runs" / "cut" / "checkpoints" / "step-0000002" / "state.pt").exists()
    assert not (pml_home / "adapters" / "cut").exists()
    train(config, resume=True, wrapping=Fsdp(AccelerateSharder(accelerator)))
    whole, cut = adapter(pml_home, "whole"), adapter(pml_home, "cut")
    assert whole.keys() == cut.keys()
    for name in whole:
        # tolerance: the same operations in the same order; only float summation order may differ
        assert (whole[name] - cut[name]).abs().max() <= 1e-6, name


def test_the_shipped_config_gives_accelerates_fsdp_plugin_our_settings(monkeypatch, tiny_model):
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.fsdp_utils import fsdp2_prepare_auto_wrap_policy
    from accelerate.utils.launch import prepare_multi_gpu_env
    from transformers import AutoModelForCausalLM

    from pimpmyllama.training.loss import CausalLMLoss

    parser = launch_command_parser()
    args = parser.parse_args(["--config_file", str(fsdp_config_path()), "--num_processes", "4",
                              "-m", "pimpmyllama", "train", "sft", "data.jsonl"])
    args, _, _ = _validate_launch_command(args)
    env = prepare_multi_gpu_env(args)
    assert (env["ACCELERATE_USE_FSDP"], env["FSDP_VERSION"], env["ACCELERATE_MIXED_PRECISION"]) == ("true", "2", "bf16")
    assert args.nproc_per_node == "4"
    for key, value in env.items():
        if key.startswith(("FSDP_", "ACCELERATE_")):
            monkeypatch.setenv(key, value)
    plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True
    assert plugin.state_dict_type.name == "FULL_STATE_DICT"
    assert plugin.transformer_cls_names_to_wrap == ["LlamaDecoderLayer"]
    assert type(plugin.cpu_offload).__name__ == "OffloadPolicy"  # no CPU offload
    # the units accelerate's FSDP2 preparation makes of the module the loop prepares: its decoder layers
    module = CausalLMLoss(AutoModelForCausalLM.from_pretrained(str(tiny_model)))
    plugin.set_auto_wrap_policy(module)
    policy = fsdp2_prepare_auto_wrap_policy(plugin, module)
    assert [type(m).__name__ for m in module.modules() if policy(m)] == ["LlamaDecoderLayer"] * 2


def test_pml_prints_where_the_config_is(pml_home):
    result = subprocess.run([sys.executable, "-m", "pimpmyllama", "train", "fsdp-config"], capture_output=True,
                            text=True, env={**os.environ, "PML_HOME": str(pml_home)})
    assert result.returncode == 0 and result.stdout == f"{fsdp_config_path()}\n"
    assert "fsdp_version: 2" in fsdp_config_path().read_text()


def test_an_fsdp_launch_on_the_cpu_is_refused_in_one_line(stored_tiny, pml_home, chat_data):
    result = subprocess.run([sys.executable, "-m", "pimpmyllama", "train", "sft", str(chat_data), "-o", "x",
                             "--from", "tiny"], capture_output=True, text=True,
                            env={**os.environ, "PML_HOME": str(pml_home), "ACCELERATE_USE_FSDP": "true",
                                 "FSDP_VERSION": "2"})
    assert result.returncode == 2
    assert result.stderr == ("error: FSDP runs on GPUs (accelerate does not shard on the CPU), but this run is "
                             "on cpu; on the CPU launch with torchrun (DDP)\n")
    assert not (pml_home / "runs" / "x").exists()


def test_fsdp_version_1_is_refused_and_version_2_passes(monkeypatch):
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_VERSION", "1")
    with pytest.raises(InvalidInputError, match="^the training loop runs FSDP version 2, not 1"):
        check_fsdp_launch(torch.device("cuda", 0))
    monkeypatch.setenv("FSDP_VERSION", "2")
    check_fsdp_launch(torch.device("cuda", 0))
    monkeypatch.delenv("ACCELERATE_USE_FSDP")
    check_fsdp_launch(torch.device("cpu"))  # no FSDP asked for: nothing to refuse


def test_a_checkpoint_is_resumed_only_the_way_it_was_written():
    from pimpmyllama.training.wrapping import Plain

    module = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(module.parameters())
    by_position = optimizer.state_dict()
    by_name = {"state": {}, "param_groups": [{**by_position["param_groups"][0], "params": ["weight", "bias"]}]}
    weights = {"weight": torch.ones(2, 2)}
    with pytest.raises(InvalidInputError, match="^ck: checkpoint of a run with FSDP; resume it with FSDP$"):
        Plain().load_state(module, optimizer, weights, by_name, "ck")
    with pytest.raises(InvalidInputError, match="^ck: checkpoint of a run without FSDP; resume it without FSDP$"):
        Fsdp(AccelerateSharder(accelerator=object())).load_state(module, optimizer, weights, by_position, "ck")
    with pytest.raises(InvalidInputError, match=r"^ck: checkpoint does not fit this model \(no parameter lm.x\)$"):
        Plain().load_state(module, optimizer, {"lm.x": torch.ones(1)}, by_position, "ck")
    Plain().load_state(module, optimizer, weights, by_position, "ck")
    assert torch.equal(module.weight.detach(), torch.ones(2, 2))
