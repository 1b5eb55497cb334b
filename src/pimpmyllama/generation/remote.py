"""A remote engine: a model on an OpenAI-compatible endpoint, driven as a conversation
drives a local engine — it is sent the packed messages (POST /chat/completions,
streamed) and gives back a `Generation` of text deltas.

Guarantees: a request the remote refuses (unreachable, bad key, busy after the
retries, context too long, an error status) fails before any text, as one line; a
reply that breaks off (connection dropped, stalled past the timeout) ends with finish
reason "interrupted" and what arrived so far — the conversation stores it as it
stores a Ctrl-C — then raises its one line.
"""

import time
from collections.abc import Callable, Iterator

from pimpmyllama.errors import InvalidInputError, RemoteError
from pimpmyllama.generation.engine import Generation
from pimpmyllama.generation.params import Completion, GenerationParams, Usage
from pimpmyllama.generation.remote_http import RemoteClient
from pimpmyllama.generation.remote_tokens import counting_format
from pimpmyllama.prompting.remote_model import RemoteModel
from pimpmyllama.prompting.template import Message

DEFAULT_CONTEXT = 2048  # the context window assumed when neither the build nor the endpoint tells it


class RemoteEngine:
    sends_messages = True  # a conversation calls generate_messages, not generate

    def __init__(self, spec: RemoteModel):
        spec = spec.resolved()
        self.spec = spec
        self.name = spec.label
        self.sampling_defaults: dict = {}  # the remote applies its own
        self.client = RemoteClient(spec)
        # Asked now, so that an unreachable endpoint or a bad key fails before a session is opened.
        props = self.client.get_json("/props", root=True)
        self.context_length = spec.num_ctx or _context_of(props) or DEFAULT_CONTEXT
        self._formats: dict = {}

    def chat_format(self, template: str | None = None):
        """How the packer counts this model's prompts (remote_tokens.py); a build's
        `template` applies only to a local tokenizer's counting."""
        if template not in self._formats:
            self._formats[template] = counting_format(self.client, self.spec.model, self.spec.tokenizer,
                                                    template)
        return self._formats[template]

    @property
    def tokenizer(self):
        return self.chat_format().tokenizer

    def generate_messages(self, messages: list[Message], params: GenerationParams,
                          num_ctx: int | None = None, prompt_tokens: int = 0) -> Generation:
        """The remote's reply to `messages`; the request is sent (and refused, if it is)
        now; the text streams as the Generation is iterated."""
        if params.grammar is not None or params.logprobs is not None:
            raise InvalidInputError(f"{self.name} is a remote model: JSON schemas and logprobs need a local one")
        started = time.perf_counter()
        events = self.client.stream_events("/chat/completions", self._body(messages, params))
        return Generation(lambda finish: self._pieces(finish, events, started, prompt_tokens))

    def _body(self, messages: list[Message], params: GenerationParams) -> dict:
        s = params.sampling
        body = {"model": self.spec.model, "messages": messages, "stream": True,
                "stream_options": {"include_usage": True}, "max_tokens": params.max_new_tokens,
                "temperature": s.temperature, "top_p": s.top_p}
        if s.seed is not None:
            body["seed"] = s.seed
        if params.stop:
            body["stop"] = list(params.stop)
        for name in ("presence_penalty", "frequency_penalty"):
            if getattr(s, name):
                body[name] = getattr(s, name)
        return body

    def _pieces(self, finish: Callable[[Completion], None], events, started: float,
                prompt_tokens: int) -> Iterator[str]:
        text, reason = "", "interrupted"
        usage = Usage(prompt_tokens=prompt_tokens)
        first = None
        try:
            for event in events:
                if event.get("usage"):
                    usage.prompt_tokens = event["usage"].get("prompt_tokens", usage.prompt_tokens)
                    usage.completion_tokens = event["usage"].get("completion_tokens", usage.completion_tokens)
                for choice in event.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content") or ""
                    if piece:
                        first = first or time.perf_counter()
                        text += piece
                        yield piece
                    if choice.get("finish_reason"):
                        reason = "length" if choice["finish_reason"] == "length" else "stop"
            if reason == "interrupted":  # [DONE] without a finish reason: what came is the reply
                reason = "stop"
        except RemoteError:
            if reason == "interrupted":
                raise
            # The reply had ended (its finish reason came); only the stream's end was lost.
        finally:
            events.close()
            ended = time.perf_counter()
            usage.prefill_seconds = (first or ended) - started
            usage.decode_seconds = ended - (first or ended)
            usage.decode_steps = max(usage.completion_tokens - 1, 0)  # tokens after the first one
            finish(Completion(text, reason, usage))


def _context_of(props: dict | None) -> int | None:
    """The context size llama-server reports in /props."""
    if not isinstance(props, dict):
        return None
    settings = props.get("default_generation_settings")
    n_ctx = (settings or {}).get("n_ctx") if isinstance(settings, dict) else None
    return n_ctx if isinstance(n_ctx, int) and n_ctx > 0 else None
