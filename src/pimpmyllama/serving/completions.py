"""`/v1/completions`, OpenAI's legacy text completions: the prompt goes to the model
as it is (no chat template, no build packing), on the model, adapter and precision
that `model` names (resolved as chat's), with the build's sampling defaults.

With `echo` and `logprobs`, the prompt's tokens come back with their log-probs too
(the first has none: null) — what lm-evaluation-harness's `local-completions` asks
for its likelihood tasks (`echo: true, logprobs: 1, temperature: 0`, `max_tokens` 0 or 1).
"""

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace

from pydantic import Field, model_validator

from pimpmyllama.chat.conversation import generation_params
from pimpmyllama.errors import PmlError
from pimpmyllama.generation.params import Completion, Usage
from pimpmyllama.serving.chat import resolve_served, with_request
from pimpmyllama.serving.engines import EnginePool, on_engine
from pimpmyllama.serving.decoding import request_decoding
from pimpmyllama.serving.errors import ApiError, as_api_error
from pimpmyllama.serving.logprobs import legacy_logprobs
from pimpmyllama.serving.responses import FINISH_REASONS, ended_in_time, usage_of
from pimpmyllama.serving.schema import SamplingFields, StreamOptions
from pimpmyllama.serving.streaming import sse_event


class CompletionRequest(SamplingFields):
    model: str = Field(min_length=1)
    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: int = Field(16, ge=0)  # OpenAI's default; 0 only with echo (scoring the prompt)
    stream: bool = False
    stream_options: StreamOptions | None = None
    logprobs: int | None = Field(None, ge=0, le=20)
    echo: bool = False
    n: int = Field(1, ge=1, le=1)

    @property
    def max_completion_tokens(self) -> int:
        return max(1, self.max_tokens)  # what `parameters` reads; 0 generates nothing (below)

    @model_validator(mode="after")
    def _zero_needs_echo(self):
        if self.max_tokens == 0 and not self.echo:
            raise ValueError("max_tokens 0 needs echo: true (it scores the prompt)")
        return self

    def prompts(self, tokenizer) -> list[tuple[str, list[int]]]:
        """Each prompt as (text, token ids); text is tokenized with the model's special
        tokens (a BOS where it has one), token ids are taken as they are."""
        many = self.prompt if isinstance(self.prompt, list) and self.prompt and not isinstance(self.prompt[0], int) \
            else [self.prompt]
        out = []
        for prompt in many:
            if isinstance(prompt, str):
                out.append((prompt, tokenizer.encode(prompt, add_special_tokens=True)))
            else:
                out.append((tokenizer.decode(prompt, skip_special_tokens=False), list(prompt)))
        if not out or any(not ids for _, ids in out):
            raise ApiError(400, "the prompt is empty", param="prompt")
        return out


@dataclass
class Choice:
    text: str
    ids: list[int]
    completion: Completion


class TextCompletion:
    """One request's prompts, answered in turn on one engine."""

    def __init__(self, pool: EnginePool, request: CompletionRequest):
        self.request = request
        build = with_request(resolve_served(request.model), request, None)
        self.engine = engine = pool.get(build)
        self.tokenizer = engine.tokenizer
        p = build.parameters.for_model(engine.context_length, engine.sampling_defaults)
        self.num_ctx = p.num_ctx
        self.params = replace(generation_params(p), max_new_tokens=max(1, request.max_tokens),
                              logprobs=request.logprobs, **request_decoding(request))
        self.prompts = request.prompts(self.tokenizer)
        for _, ids in self.prompts:
            self._check_fits(ids)
        if request.stream and len(self.prompts) > 1:
            raise ApiError(400, "a streamed completion takes one prompt", param="prompt")
        self.id, self.created = f"cmpl-{uuid.uuid4().hex}", int(time.time())

    def _check_fits(self, ids: list[int]) -> None:
        needed = len(ids) + self.request.max_tokens
        if len(ids) >= self.num_ctx or needed > self.num_ctx:
            raise ApiError(400, f"the prompt has {len(ids)} tokens and max_tokens is {self.request.max_tokens}, "
                                f"but the context size is {self.num_ctx}: send a shorter prompt or ask for fewer "
                                "tokens", param="prompt", code="context_length_exceeded")

    def _pieces(self, ids: list[int]) -> Iterator[str]:
        """The reply's text pieces (Pieces with entries when logprobs is asked); its
        Completion is the generator's return value."""
        if self.request.max_tokens == 0:
            return Completion("", "length", Usage(prompt_tokens=len(ids)), [], [] if self.request.logprobs is not None
                              else None)
        generation = self.engine.generate(ids, self.params, self.num_ctx)
        yield from generation
        return generation.completion

    def _echo_logprobs(self, text: str, ids: list[int]) -> dict | None:
        if not self.request.echo or self.request.logprobs is None:
            return None
        entries = on_engine(self.engine, lambda engine: engine.prompt_logprobs(ids, self.request.logprobs, self.num_ctx))
        return legacy_logprobs(self.tokenizer, entries, ids)

    def _reply_logprobs(self, entries, start: int) -> dict | None:
        if entries is None:
            return None
        return legacy_logprobs(self.tokenizer, list(entries), [e.token for e in entries], start)

    def _head(self) -> dict:
        return {"id": self.id, "object": "text_completion", "created": self.created, "model": self.request.model}

    def body(self) -> dict:
        """The whole response (not streamed)."""
        choices, usage = [], Usage()
        for index, (text, ids) in enumerate(self.prompts):
            echoed = self._echo_logprobs(text, ids)
            completion = yield_all(self._pieces(ids))
            ended_in_time(completion)
            start = len(text) if self.request.echo else 0
            logprobs = merge_logprobs(echoed, self._reply_logprobs(completion.logprobs, start))
            choices.append({"text": (text if self.request.echo else "") + completion.text, "index": index,
                            "logprobs": logprobs, "finish_reason": FINISH_REASONS[completion.finish_reason]})
            usage.prompt_tokens += len(ids)
            usage.completion_tokens += completion.usage.completion_tokens
        return {**self._head(), "choices": choices, "usage": usage_of(Completion("", "stop", usage))}

    def chunks(self) -> Iterator[dict]:
        """The streamed response's bodies: the echoed prompt, each piece, the finish
        reason, then the usage when asked."""
        text, ids = self.prompts[0]
        if self.request.echo:
            yield self._chunk(text, self._echo_logprobs(text, ids))
        start = len(text) if self.request.echo else 0
        pieces = self._pieces(ids)
        while True:
            try:
                piece = next(pieces)
            except StopIteration as end:
                completion = end.value
                break
            entries = getattr(piece, "logprobs", None) if self.request.logprobs is not None else None
            yield self._chunk(str(piece), self._reply_logprobs(entries, start))
            start += len(piece)
        ended_in_time(completion)
        yield self._chunk("", None, FINISH_REASONS[completion.finish_reason])
        if self.request.stream_options and self.request.stream_options.include_usage:
            usage = replace(completion.usage, prompt_tokens=len(ids))
            yield {**self._head(), "choices": [], "usage": usage_of(Completion("", "stop", usage))}

    def _chunk(self, text: str, logprobs: dict | None, finish_reason: str | None = None) -> dict:
        return {**self._head(), "choices": [{"text": text, "index": 0, "logprobs": logprobs,
                                             "finish_reason": finish_reason}]}


def sse(bodies: Iterator[dict]) -> Iterator[str]:
    """Server-sent events; an error once begun is a last `data: {"error": ...}`."""
    try:
        for body in bodies:
            yield sse_event(body)
    except (PmlError, ApiError) as exc:
        yield sse_event(as_api_error(exc).body())
    yield sse_event("[DONE]")


def yield_all(pieces: Iterator[str]) -> Completion:
    """Run a generator of pieces to its end: its return value."""
    while True:
        try:
            next(pieces)
        except StopIteration as end:
            return end.value


def merge_logprobs(first: dict | None, second: dict | None) -> dict | None:
    """Two legacy logprobs objects one after the other (the echoed prompt's, the reply's)."""
    if first is None or second is None:
        return first or second
    return {key: first[key] + second[key] for key in first}
