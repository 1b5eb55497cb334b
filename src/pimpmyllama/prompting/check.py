"""A build checked against its model when it is created, so that what `pml create`
accepts, `pml chat` and `pml ask` run."""

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.models.info import read_config
from pimpmyllama.models.refs import resolve_model
from pimpmyllama.progress import Progress
from pimpmyllama.prompting.build import Build, RopeScaling
from pimpmyllama.prompting.styles import resolve_styles
from pimpmyllama.prompting.template import ChatTemplate


def context_limit(model: str, trained: int, scaling: RopeScaling | None) -> str:
    """The longest num_ctx a model allows, and why, in words."""
    if scaling is None:
        return f"{model}'s context length {trained} (parameters.rope_scaling can stretch it)"
    base = scaling.original_max_position_embeddings or trained
    return (f"{model}'s context length {base} × rope_scaling factor {scaling.factor:g} = "
            f"{scaling.context_length(trained)}")


def _scaled_already(config: dict) -> bool:
    params = config.get("rope_parameters") or config.get("rope_scaling") or {}
    return params.get("rope_type", params.get("type", "default")) != "default"


def check_build(build: Build, progress: Progress | None = None) -> None:
    """The build's styles are known and have their parameters; the model (and
    adapter) exist and fit; the parameters fit the model's context; the build's own
    chat template parses."""
    resolve_styles(build.styles)
    if build.template is not None:
        ChatTemplate(build.template)
    if build.is_remote:  # the endpoint is asked when the build runs, not when it is made
        return
    model = resolve_model(build.from_, progress, adapter=build.adapter)
    config = read_config(model.folder)
    trained = int(config.get("max_position_embeddings", 2048))
    scaling = build.parameters.rope_scaling
    context_length = scaling.context_length(trained) if scaling else trained
    params = build.parameters.for_model(context_length)
    if params.num_ctx > context_length:
        raise InvalidInputError(f"num_ctx {params.num_ctx} exceeds {context_limit(model.name, trained, scaling)}")
    if scaling and _scaled_already(config):
        raise InvalidInputError(f"{model.name} already scales its rotary embeddings; rope_scaling applies to models "
                                "with plain ones")
    if params.max_new_tokens >= params.num_ctx:
        raise InvalidInputError(f"max_new_tokens {params.max_new_tokens} leaves no room for the prompt in "
                                f"num_ctx {params.num_ctx}")
