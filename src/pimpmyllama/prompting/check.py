"""A build checked against its model when it is created, so that what `pml create`
accepts, `pml chat` and `pml ask` run."""

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.models.info import read_config
from pimpmyllama.models.refs import resolve_model
from pimpmyllama.progress import Progress
from pimpmyllama.prompting.build import Build
from pimpmyllama.prompting.styles import resolve_styles
from pimpmyllama.prompting.template import ChatTemplate


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
    context_length = int(read_config(model.folder).get("max_position_embeddings", 2048))
    params = build.parameters.for_model(context_length)
    if params.num_ctx > context_length:
        raise InvalidInputError(f"num_ctx {params.num_ctx} exceeds {model.name}'s context length {context_length}")
    if params.max_new_tokens >= params.num_ctx:
        raise InvalidInputError(f"max_new_tokens {params.max_new_tokens} leaves no room for the prompt in "
                                f"num_ctx {params.num_ctx}")
