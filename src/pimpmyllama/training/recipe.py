"""The training recipe, top to bottom: setup -> train -> save -> cleanup.

One flat loop, one place that steps the optimizer, one `StepReport` per step. The
data order is a pure function of (seed, step), so a resumed run sees exactly the
batches the uninterrupted one would have; with several processes each takes its
share of every global batch, and the loss is normalised over the whole of it.
"""

import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from pimpmyllama.devices import resolve_device
from pimpmyllama.errors import InvalidInputError, PmlError
from pimpmyllama.models.adapters import AdapterStore
from pimpmyllama.models.refs import resolve_model_folder
from pimpmyllama.models.store import ModelStore
from pimpmyllama.paths import runs_dir
from pimpmyllama.prompting.refs import resolve_build
from pimpmyllama.prompting.format import ChatFormat
from pimpmyllama.prompting.tokenizer import Tokenizer
from pimpmyllama.quiet import quiet_transformers
from pimpmyllama.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from pimpmyllama.training.config import TrainConfig
from pimpmyllama.training.artifacts import write_artifact
from pimpmyllama.training.dataset import PreparedData, prepare
from pimpmyllama.training.distributed import Distributed
from pimpmyllama.training.fsdp import AccelerateSharder, Fsdp, check_fsdp_launch, fsdp_requested
from pimpmyllama.training.loss import CausalLMLoss, Throughput, batch_loss, normalise
from pimpmyllama.training.packing import Row, collate, one_per_row, pack
from pimpmyllama.training.perplexity import default_general_text, general_examples, perplexity
from pimpmyllama.training.schedule import lr_factor
from pimpmyllama.training.step_report import OnStep, StepReport
from pimpmyllama.training.tokenize import ExampleEncoder
from pimpmyllama.training.wrapping import Ddp, Plain


class TrainingInterrupted(PmlError):
    """Ctrl-C: a checkpoint was saved; the run can be resumed."""


@dataclass
class TrainResult:
    output: str
    kind: str  # "adapter" or "model"
    steps: int
    metrics: dict = field(default_factory=dict)
    run_dir: Path | None = None


@dataclass
class Base:
    name: str
    folder: Path
    template: str | None


def resolve_base(ref: str) -> Base:
    """A store model, a model folder, or a build (its model and chat template); not a
    model with an adapter, which would have to be merged first."""
    build = resolve_build(ref).build
    if build.adapter:
        raise InvalidInputError(f"{ref!r} has an adapter: train on a model, or merge the adapter first "
                                "(`pml merge lora`)")
    name, folder = resolve_model_folder(build.local_model("training"))
    return Base(name, folder, build.template)


def output_store(config: TrainConfig):
    """Where the run's result goes: the adapter store for LoRA, the model store for a full fine-tune."""
    return AdapterStore() if config.method == "lora" else ModelStore()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class StepPlan:
    """Which rows each process trains on at each optimizer step: an endless stream
    of per-epoch shuffles, cut into global batches of batch_size x accumulation x world."""

    def __init__(self, rows: list[Row], config: TrainConfig, world: int):
        self.rows, self.config, self.world = rows, config, world
        self.global_rows = config.batch_size * config.gradient_accumulation * world
        self.steps_per_epoch = math.ceil(len(rows) / self.global_rows)
        self.total = config.max_steps or max(1, math.ceil(config.epochs * self.steps_per_epoch))
        self._orders: dict[int, list[int]] = {}

    def _row(self, index: int) -> Row:
        epoch, position = divmod(index, len(self.rows))
        if epoch not in self._orders:
            order = list(range(len(self.rows)))
            random.Random(self.config.seed * 1000 + epoch).shuffle(order)
            self._orders = {epoch: order}
        return self.rows[self._orders[epoch][position]]

    def global_batch(self, step: int) -> list[Row]:
        start = step * self.global_rows
        return [self._row(start + i) for i in range(self.global_rows)]

    def micro_batches(self, step: int, rank: int) -> list[list[Row]]:
        rows, size = self.global_batch(step), self.config.batch_size
        return [rows[(m * self.world + rank) * size : (m * self.world + rank + 1) * size]
                for m in range(self.config.gradient_accumulation)]


def build_model(base: Base, config: TrainConfig):
    from transformers import AutoModelForCausalLM

    quiet_transformers()
    model = AutoModelForCausalLM.from_pretrained(str(base.folder), dtype=torch.float32)
    model.config.use_cache = False
    if config.method == "lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=config.lora_rank,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=config.lora_targets,
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lora)
    return model


def causal_lm(model):
    """The transformers model inside a PEFT wrapper (LoRA layers already in place)."""
    return model.base_model.model if hasattr(model, "peft_config") else model


def wrapping_for(dist: Distributed):
    """FSDP through accelerate when `accelerate launch` was given an FSDP config (checked
    first by check_fsdp_launch), DDP for any other launch of several processes, else none."""
    if fsdp_requested():
        return Fsdp(AccelerateSharder())
    return Ddp(dist.device_ids) if dist.world_size > 1 else Plain()


def artifact_state(model, weights: dict) -> dict:
    """The loss module's weights (names under `lm.`) named as in `model`, the PEFT or
    transformers model whose save_pretrained writes them."""
    prefix = "base_model.model." if hasattr(model, "peft_config") else ""
    return {prefix + name.removeprefix("lm."): value for name, value in weights.items()}


def train(config: TrainConfig, *, resume: bool = False, on_step: OnStep | None = None,
          wrapping=None) -> TrainResult:
    """One training run. `wrapping` (training/wrapping.py) is how the model is wrapped for
    the processes it runs in; by default, chosen from the launcher's environment."""
    # setup ------------------------------------------------------------------------
    if not config.output:
        raise InvalidInputError("name the output with -o NAME")
    device = resolve_device(config.device)  # a device that is not there: refused before any work
    if wrapping is None:
        check_fsdp_launch(device)  # an FSDP launch this loop cannot run: refused before any work
    output_store(config).check_new(config.output, config.force)  # before any work
    run_dir = runs_dir() / config.output
    checkpoints = run_dir / "checkpoints"
    if resume and latest_checkpoint(checkpoints) is None:
        raise InvalidInputError(f"nothing to resume: run {config.output!r} has no checkpoint")
    dist = Distributed.from_env(device)
    wrapping = wrapping or wrapping_for(dist)
    seed_everything(config.seed)
    base = resolve_base(config.from_)
    tokenizer = Tokenizer(base.folder)
    chat_format = ChatFormat(tokenizer, base.template, model_name=base.name)
    data: PreparedData = prepare([Path(p) for p in config.data], chat_format, kind=config.kind,
                                 max_length=config.max_length, eval_split=config.eval_split, seed=config.seed)
    rows = pack(data.train, config.max_length) if config.packing else one_per_row(data.train)
    plan = StepPlan(rows, config, dist.world_size)
    pad_id = tokenizer.pad_token and tokenizer.token_to_id(tokenizer.pad_token)
    pad_id = pad_id if pad_id is not None else 0
    model = build_model(base, config)
    # On the device (batches follow its weights there: loss.batch_loss), wrapped; the
    # optimizer over the trainable parameters as the wrapping holds them.
    loss_module, optimizer = wrapping.prepare(
        CausalLMLoss(causal_lm(model)), device,
        lambda params: torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay))
    trained = [p for p in loss_module.parameters() if p.requires_grad]
    warmup = int(plan.total * config.warmup_ratio)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, plan.total, warmup, config.lr_scheduler)
    )
    encoder = ExampleEncoder(chat_format)
    general_path = Path(config.general_text) if config.general_text else default_general_text()
    general = general_examples(encoder, general_path, config.max_length)

    start, before = 0, {}
    if resume:
        state = load_checkpoint(latest_checkpoint(checkpoints), wrapping, loss_module, optimizer, scheduler)
        if state.get("data_hash") != data.data_hash:
            raise InvalidInputError("the data changed since the checkpoint; resume needs the same data files")
        start, before = state["step"], state.get("before", {})
    else:
        before = {"domain": perplexity(loss_module, data.eval, pad_id), "general": perplexity(loss_module, general, pad_id)}
    metrics_file = run_dir / "metrics.jsonl"
    if dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(config.model_dump(by_alias=True), indent=2))
        # The log restarts where the checkpoint does: steps after it will be run again.
        kept = []
        if start and metrics_file.exists():
            kept = [line for line in metrics_file.read_text().splitlines() if json.loads(line)["step"] <= start]
        metrics_file.write_text("".join(line + "\n" for line in kept))

    def checkpoint(step: int) -> None:
        # Whole tensors gathered by every process (collectives under FSDP), written by one.
        weights = wrapping.trainable_state(loss_module)
        optimizer_state = wrapping.optimizer_state(loss_module, optimizer)
        if dist.is_main:
            save_checkpoint(checkpoints, step, weights, optimizer_state, scheduler,
                            {"data_hash": data.data_hash, "before": before, "config": config.model_dump(by_alias=True)})
        dist.barrier()

    # train ------------------------------------------------------------------------
    throughput = Throughput()
    loss_module.train()
    step = start
    try:
        for step in range(start, plan.total):
            global_trained = sum(r.trained_tokens for r in plan.global_batch(step))
            micro = plan.micro_batches(step, dist.rank)
            loss_sum = 0.0
            for m, rows_m in enumerate(micro):
                batch = collate(rows_m, pad_id)
                with wrapping.micro_batch(loss_module, last=m == len(micro) - 1):
                    summed = batch_loss(loss_module, batch)
                    wrapping.backward(normalise(summed, global_trained, dist.world_size))
                loss_sum += float(summed.detach())
                throughput.add(batch)
            grad_norm = wrapping.clip_grad_norm(trained, config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            report = StepReport(
                step=step + 1,
                total_steps=plan.total,
                loss=dist.sum(loss_sum) / max(global_trained, 1),
                lr=scheduler.get_last_lr()[0],
                grad_norm=grad_norm,
                trained_tokens_per_second=dist.sum(throughput.trained_tokens_per_second),
                tokens_per_second=dist.sum(throughput.tokens_per_second),
                elapsed=throughput.seconds,
            )
            if dist.is_main:
                if (step + 1) % config.log_steps == 0 or step + 1 == plan.total:
                    with open(metrics_file, "a") as f:
                        f.write(json.dumps(report.as_dict()) + "\n")
                if on_step:
                    on_step(report)
            if (step + 1) % config.save_steps == 0 and step + 1 < plan.total:
                checkpoint(step + 1)
        step = plan.total
    except KeyboardInterrupt:
        checkpoint(step)
        raise TrainingInterrupted(
            f"interrupted at step {step} of {plan.total}; a checkpoint was saved: "
            f"resume with the same command and --resume"
        ) from None

    # save -------------------------------------------------------------------------
    after = {"domain": perplexity(loss_module, data.eval, pad_id), "general": perplexity(loss_module, general, pad_id)}
    result_metrics = {
        "before": before,
        "after": after,
        "examples": len(data.train),
        "eval_examples": len(data.eval),
        "dropped_too_long": len(data.too_long),
        "rows": len(rows),
        "steps": plan.total,
        "format": data.format,
    }
    # Sharded weights are gathered whole (by every process) for the one that writes them.
    state = artifact_state(model, wrapping.trainable_state(loss_module)) if wrapping.shards else None
    if dist.is_main:
        write_artifact(config, base, model, tokenizer, data, result_metrics, run_dir, state_dict=state)
    dist.barrier()
    dist.close()
    return TrainResult(config.output, "adapter" if config.method == "lora" else "model", plan.total,
                       result_metrics, run_dir)
