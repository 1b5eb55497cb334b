"""A training run's configuration: a YAML file (`--config`) validated like builds,
with command-line options overriding it."""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pimpmyllama.config_files import read_config_text, read_yaml_mapping, validate
from pimpmyllama.models.defaults import DEFAULT_MODEL


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    kind: Literal["sft", "pretrain"] = Field("sft", description="supervised fine-tuning or continued pre-training")
    data: list[str] = Field(default_factory=list, description="data files (JSONL, JSON, CSV, Parquet; text for pretrain)")
    from_: str = Field(DEFAULT_MODEL, alias="from", description="base model (store name or folder) or build")
    output: str = Field("", description="name of the adapter or model written to the store")
    force: bool = Field(False, description="replace an adapter or model of the same name")
    method: Literal["lora", "full"] = Field("lora", description="LoRA adapter or full fine-tune")
    epochs: float = Field(3.0, gt=0, description="passes over the training data (ignored when max_steps is set)")
    max_steps: int | None = Field(None, ge=1, description="optimizer steps to run, overriding epochs")
    learning_rate: float | None = Field(None, gt=0, description="peak learning rate (LoRA 2e-4, full 2e-5)")
    lr_scheduler: Literal["cosine", "linear", "constant"] = Field("cosine", description="decay after warmup")
    warmup_ratio: float = Field(0.03, ge=0, lt=1, description="share of steps spent warming up")
    batch_size: int = Field(1, ge=1, description="rows per micro-batch, per process (memory grows with it)")
    gradient_accumulation: int = Field(4, ge=1, description="micro-batches per optimizer step")
    max_length: int = Field(512, ge=8, description="tokens per row; longer examples are dropped, and counted")
    packing: bool = Field(True, description="pack several examples per row (exact: block-diagonal attention)")
    lora_rank: int = Field(8, ge=1, description="rank r of each LoRA update (B·A)")
    lora_alpha: int = Field(16, ge=1, description="LoRA scale numerator: updates are scaled by alpha / rank")
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the LoRA input (0 is LLaMA-Factory's default; dropout costs a copy of every input)")
    lora_targets: list[str] | Literal["all-linear"] = Field("all-linear", description="module names, or all-linear")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    max_grad_norm: float = Field(1.0, gt=0, description="gradients are clipped to this global norm")
    eval_split: float = Field(0.05, ge=0, lt=1, description="share of examples held out for evaluation")
    general_text: str | None = Field(None, description="reference text for what the model may forget")
    seed: int = Field(42, description="seeds the data order, the held-out split and the initial weights")
    save_steps: int = Field(50, ge=1, description="checkpoint every N steps")
    log_steps: int = Field(1, ge=1, description="write metrics.jsonl every N steps")
    device: str | None = Field(None, description="auto, cpu, cuda or cuda:N (default: $PML_DEVICE, else auto: "
                               "the GPU where there is one; under torchrun each process its own, LOCAL_RANK)")

    @model_validator(mode="after")
    def _defaults(self):
        if self.learning_rate is None:
            self.learning_rate = 2e-4 if self.method == "lora" else 2e-5
        return self


def load_train_config(path: Path | None, overrides: dict) -> TrainConfig:
    """The config file's keys (if any), each overridden by an option given (not None)."""
    data: dict = {}
    if path is not None:
        data = read_yaml_mapping(read_config_text(path), str(path), "a training config is a mapping of keys",
                                 empty_ok=True)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return validate(TrainConfig, data, str(path or "options"))
