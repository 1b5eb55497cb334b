"""A chat completion request, from its JSON to a reply ready to stream: resolve the
model reference as the CLI does, apply the request's system prompt and parameters to
the build, pack the request's messages, and refuse what does not fit."""

import copy
from dataclasses import dataclass, field

from pimpmyllama.chat.conversation import Conversation, Reply
from pimpmyllama.chat.opening import open_build
from pimpmyllama.errors import ContextOverflowError, PmlError
from pimpmyllama.models.refs import is_path, split_adapter
from pimpmyllama.prompting.build import Build, Parameters
from pimpmyllama.prompting.packer import PackedContext, Turn
from pimpmyllama.prompting.refs import is_build_file, resolve_build
from pimpmyllama.serving.decoding import chat_decoding
from pimpmyllama.serving.engines import EnginePool
from pimpmyllama.serving.errors import ApiError, from_pml_error
from pimpmyllama.serving.extras import with_extras
from pimpmyllama.serving.messages import split_messages
from pimpmyllama.serving.schema import ChatCompletionRequest
from pimpmyllama.serving.sessions import pack_in_session
from pimpmyllama.text import check_text


@dataclass
class Answer:
    model: str
    reply: Reply  # `async for` its text pieces; afterwards `reply.completion` holds its usage
    tokenizer: object  # the model's: token ids as text, for logprobs
    session: str | None = None  # the session the turn is stored in
    evicted: list[int] = field(default_factory=list)  # the session's turns that had left its window


def resolve_served(ref: str) -> Build:
    """The build a request's `model` names: stored builds, models and adapters only —
    a client must not make the server read files by their path."""
    try:
        target, _ = split_adapter(ref)
        if is_path(target) or is_build_file(target):
            raise ApiError(400, f"{ref!r}: the server serves stored builds and models by name, not files",
                           param="model")
        return resolve_build(ref).build
    except PmlError as exc:
        raise from_pml_error(exc, param="model") from None


def with_request(build: Build, request: ChatCompletionRequest, system: str | None) -> Build:
    given = request.parameters()
    if "stop" in given:  # the build's stop strings still end its replies
        given["stop"] = [*build.parameters.stop, *given["stop"]]
    parameters = Parameters.model_validate({**build.parameters.model_dump(exclude_unset=True), **given})
    update = {"parameters": parameters}
    if system is not None:
        update["system"] = system
    return build.model_copy(update=update)


def start_answer(pool: EnginePool, request: ChatCompletionRequest) -> Answer:
    dialogue = split_messages(request.messages)
    build = with_extras(with_request(resolve_served(request.model), request, dialogue.system), request.pml)
    served = pool.get(build)
    decoding = chat_decoding(request)
    message = check_text(dialogue.message, "the last message")
    if request.pml and request.pml.session is not None:
        turn = pack_in_session(build, request.model, served, request.pml.session, message, dialogue.history)
        reply = turn.conversation.answer(message, turn.context, decoding)
        return Answer(request.model, reply, served.tokenizer, request.pml.session, turn.evicted)
    conversation = open_build(build, engine=served)
    context = conversation.pack(message, dialogue.history)
    refuse_dropped_turns(conversation, message, dialogue.history, context)
    return Answer(request.model, conversation.answer(message, context, decoding), served.tokenizer)


def refuse_dropped_turns(conversation: Conversation, message: str, history: list[Turn],
                         context: PackedContext) -> None:
    """The packer leaves out the oldest turns that do not fit; a client that sent them
    would not know, so here that is an error with the numbers, as an overflow is."""
    if not context.dropped_turns:
        return
    # The whole prompt's size: the same packing in a window that holds everything.
    unbounded = copy.copy(conversation)
    unbounded.parameters = conversation.parameters.model_copy(update={"num_ctx": 1 << 30})
    needed = unbounded.pack(message, history).total_tokens
    raise ContextOverflowError(
        f"the messages need {needed} tokens but only {context.budget} fit (context size {context.num_ctx} - "
        f"max_tokens {context.max_new_tokens}); the oldest {len(context.dropped_turns)} of {len(history)} "
        "earlier turns would be left out: send fewer messages or ask for fewer tokens")
