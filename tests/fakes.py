"""A fake engine with queued replies, for chat and CLI tests that are not about the
model. It uses a real tokenizer and chat template, so packing is real."""

from collections import deque
from pathlib import Path

import torch

from pimpmyllama.generation.engine import Completion, Generation, Usage
from pimpmyllama.prompting.format import ChatFormat
from pimpmyllama.prompting.tokenizer import Tokenizer


class FakeEngine:
    def __init__(self, folder: Path, replies=(), name: str = "fake", context_length: int = 4096):
        self.name = name
        self.folder = folder
        self.tokenizer = Tokenizer(folder)
        self.context_length = context_length
        self.sampling_defaults: dict = {}
        self.replies = deque(replies)
        self.prompts: list[str] = []  # every prompt, as rendered text
        self.prompt_ids: list[list[int]] = []  # every prompt, as sent
        self.params: list = []  # every call's GenerationParams
        self.scored: list[list[int]] = []  # every prompt given to next_token_logprobs
        self.logprobs = lambda text: torch.full((self.tokenizer.vocab_size,), -20.0)  # prompt text -> log-probs

    def chat_format(self, template=None):
        return ChatFormat(self.tokenizer, template, model_name=self.name)

    def generate(self, prompt_ids, params, num_ctx=None):
        self.prompts.append(self.tokenizer.decode(prompt_ids, skip_special_tokens=False))
        self.prompt_ids.append(list(prompt_ids))
        self.params.append(params)
        reply = self.replies.popleft() if self.replies else "ok"
        interrupt = None
        if isinstance(reply, tuple):  # (text so far, exception to raise after it)
            reply, interrupt = reply

        def steps(finish):
            usage = Usage(prompt_tokens=len(prompt_ids))
            sent = ""
            reason = "interrupted"
            try:
                for word in reply.split(" "):
                    piece = word if not sent else " " + word
                    sent += piece
                    usage.completion_tokens += 1
                    yield piece
                if interrupt is not None:
                    raise interrupt
                reason = "stop"
            finally:
                finish(Completion(sent, reason, usage))

        return Generation(steps)

    def next_token_logprobs(self, prompt_ids, num_ctx=None):
        self.scored.append(list(prompt_ids))
        return self.logprobs(self.tokenizer.decode(prompt_ids, skip_special_tokens=False))


def patch_load_engine(monkeypatch, engine: FakeEngine) -> FakeEngine:
    """Every conversation opened from now on (chat, ask, compare) runs on `engine`."""
    import pimpmyllama.chat.opening as opening

    monkeypatch.setattr(opening, "load_engine", lambda ref, progress=None, **options: engine)
    return engine
