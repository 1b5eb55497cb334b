"""From a resolved build to a loaded engine."""

from pimpmyllama.generation.engine import Engine
from pimpmyllama.models.refs import resolve_model
from pimpmyllama.progress import Progress
from pimpmyllama.prompting.build import RopeScaling


def load_engine(model_ref: str, progress: Progress | None = None, adapter: str | None = None,
                precision: str | None = None, rope_scaling: RopeScaling | None = None,
                num_ctx: int | None = None) -> Engine:
    """The engine for MODEL[+ADAPTER] (the adapter's fit is checked as it loads), its
    context stretched by `rope_scaling` and its KV cache checked for `num_ctx` (Engine.load)."""
    resolved = resolve_model(model_ref, progress, adapter=adapter, check_fit=False)
    return Engine.load(resolved.name, resolved.folder, resolved.adapter, precision, rope_scaling, num_ctx, progress)
