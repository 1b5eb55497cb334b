"""Perplexity: exp of the mean loss per predicted token, on held-out examples (what a
run should gain) and on a general reference text (what it may forget)."""

import math
import sysconfig
from pathlib import Path

import torch

from pimpmyllama.devices import resolve_device
from pimpmyllama.models.adapters import Adapter
from pimpmyllama.prompting.format import ChatFormat
from pimpmyllama.prompting.refs import resolve_model_of
from pimpmyllama.prompting.tokenizer import Tokenizer
from pimpmyllama.quiet import quiet_transformers
from pimpmyllama.training.dataset import prepare
from pimpmyllama.training.formats import TextExample
from pimpmyllama.training.loss import CausalLMLoss, batch_loss
from pimpmyllama.training.packing import collate, one_per_row
from pimpmyllama.training.tokenize import ExampleEncoder, TokenizedExample, text_blocks


def default_general_text() -> Path:
    """A real English text every Python installation has: CPython's LICENSE.txt
    (its first part is the history of Python, in prose)."""
    return Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt"


def general_examples(encoder: ExampleEncoder, path: Path, block: int) -> list[TokenizedExample]:
    text = path.read_text(encoding="utf-8", errors="replace")
    return text_blocks([encoder.encode_text(TextExample(text, str(path)))], block)


@torch.no_grad()
def perplexity(loss_module, examples: list[TokenizedExample], pad_id: int, batch_size: int = 1) -> float | None:
    if not examples:
        return None
    total, count = 0.0, 0
    was_training = loss_module.training
    loss_module.eval()
    try:
        rows = one_per_row(examples)
        for start in range(0, len(rows), batch_size):
            batch = collate(rows[start : start + batch_size], pad_id)
            total += float(batch_loss(loss_module, batch))
            count += batch.trained_tokens
    finally:
        loss_module.train(was_training)
    return math.exp(total / count) if count else None


def model_perplexity(model_ref: str, paths: list[Path], *, adapter: str | None = None,
                     max_length: int = 512) -> tuple[float, int]:
    """Perplexity of a stored model (with an adapter merged in, if given) on data files:
    text files are cut into blocks; datasets count their trained tokens (answers)."""
    resolved = resolve_model_of(f"{model_ref}+{adapter}" if adapter else model_ref)
    name, folder = resolved.name, resolved.folder
    tokenizer = Tokenizer(folder)
    data = prepare(paths, ChatFormat(tokenizer, model_name=name), kind="sft", max_length=max_length,
                   eval_split=0.0, seed=0)
    from transformers import AutoModelForCausalLM

    quiet_transformers()
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    if resolved.adapter:
        Adapter(resolved.adapter).apply_to_module(model)
    model.to(resolve_device(None))  # the default in force (--device); batches follow (loss.batch_loss)
    pad = tokenizer.token_to_id(tokenizer.pad_token) if tokenizer.pad_token else None
    examples = data.train
    value = perplexity(CausalLMLoss(model), examples, pad if pad is not None else 0)
    tokens = sum(max(0, sum(1 for x in e.labels[1:] if x != -100)) for e in examples)
    return value, tokens
