"""Perplexity over long windows (`pml eval ppl --num-ctx`): what stretching a model's
context costs in quality.

The text files are joined (a blank line between) and tokenized without special
tokens; the tokens are cut into non-overlapping windows of num_ctx (stride =
num_ctx), each scored on its own from an empty cache: every token but a window's
first is predicted from the tokens before it in its window. A tail shorter than
num_ctx is not scored. Runs on the engine at the build's (or given) precision and
rope scaling, with the dynamic base computed for num_ctx.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pimpmyllama.chat.opening import load_build_engine
from pimpmyllama.config_files import read_config_text
from pimpmyllama.errors import InvalidInputError
from pimpmyllama.generation.kv_memory import KVCacheSize, check_kv_fits, kv_cache_size
from pimpmyllama.generation.precision import check_precision
from pimpmyllama.generation.rope import scaled_config
from pimpmyllama.generation.windows import token_losses
from pimpmyllama.models.info import read_config
from pimpmyllama.models.refs import resolve_model
from pimpmyllama.prompting.build import Build, RopeScaling
from pimpmyllama.prompting.check import check_build
from pimpmyllama.prompting.refs import resolve_build


@dataclass(frozen=True)
class WindowPlan:
    """What a long-window perplexity will run, known before the model loads."""

    build: Build  # the model, adapter, precision, rope scaling and num_ctx it loads with
    num_ctx: int
    kv_cache: KVCacheSize


@dataclass(frozen=True)
class WindowPerplexity:
    perplexity: float
    tokens: int  # predicted tokens: windows × (num_ctx - 1)
    windows: int
    num_ctx: int


def plan_window_perplexity(ref: str, num_ctx: int, rope_scaling: RopeScaling | None = None,
                           precision: str | None = None) -> WindowPlan:
    """`ref`: a model, MODEL+ADAPTER or build; its own rope scaling and precision are
    used unless `rope_scaling` / `precision` are given. Refused (InvalidInputError) when
    num_ctx exceeds the (stretched) context or its KV cache does not fit in memory."""
    build = resolve_build(ref).build
    update = {"num_ctx": num_ctx, "max_new_tokens": 1}
    if rope_scaling is not None:
        update["rope_scaling"] = rope_scaling
    parameters = build.parameters.model_copy(update=update)
    if precision:
        build = build.model_copy(update={"precision": check_precision(precision).name})
    build = build.model_copy(update={"parameters": parameters})
    check_build(build)  # num_ctx within the (stretched) context, a model whose rope may be scaled
    config = read_config(resolve_model(build.from_).folder)
    if parameters.rope_scaling is not None:
        config = scaled_config(config, parameters.rope_scaling.model_dump(), num_ctx)
    kv_cache = kv_cache_size(config, num_ctx)
    check_kv_fits(kv_cache)  # refused here, before anything is stated or loaded
    return WindowPlan(build, num_ctx, kv_cache)


def read_windows(tokenizer, paths: list[Path], num_ctx: int, max_windows: int | None = None) -> list[list[int]]:
    text = "\n\n".join(read_config_text(path) for path in paths)
    ids = tokenizer.encode(text)
    count = len(ids) // num_ctx if max_windows is None else min(max_windows, len(ids) // num_ctx)
    if count == 0:
        raise InvalidInputError(f"the text has {len(ids)} tokens: fewer than one window of num_ctx {num_ctx}")
    return [ids[n * num_ctx : (n + 1) * num_ctx] for n in range(count)]


def window_perplexity(plan: WindowPlan, paths: list[Path], max_windows: int | None = None,
                      on_window: Callable[[int, int], None] | None = None) -> WindowPerplexity:
    """Load the plan's engine (refused if its KV cache does not fit) and score the
    windows; `on_window(done, total)` after each."""
    engine = load_build_engine(plan.build)
    windows = read_windows(engine.tokenizer, paths, plan.num_ctx, max_windows)
    total, count = 0.0, 0
    for n, window in enumerate(windows):
        losses = token_losses(engine.backend, window)
        total, count = total + float(losses.sum()), count + len(losses)
        if on_window:
            on_window(n + 1, len(windows))
    return WindowPerplexity(math.exp(total / count), count, len(windows), plan.num_ctx)
