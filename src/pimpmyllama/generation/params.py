"""What a generation is asked for and what it gives back."""

from dataclasses import dataclass, field

from pimpmyllama.generation.constraints import Grammar
from pimpmyllama.generation.logprobs import TokenLogprob
from pimpmyllama.generation.sampling import SamplingParams


@dataclass(frozen=True)
class GenerationParams:
    max_new_tokens: int = 512
    sampling: SamplingParams = field(default_factory=SamplingParams)
    stop: tuple[str, ...] = ()
    ignore_end_tokens: bool = False  # for benchmarks: always generate max_new_tokens
    logprobs: int | None = None  # None: none computed; n: each token's log-prob and the n likeliest
    grammar: Grammar | None = None  # the replies it allows (constraints.py); None: any
    deadline: float | None = None  # time.monotonic() by which it ends, finish reason "timeout"


@dataclass
class Usage:
    prompt_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens whose keys/values were reused
    completion_tokens: int = 0
    prefill_seconds: float = 0.0  # time to first token
    decode_steps: int = 0  # single-token forward passes after the prompt's
    decode_seconds: float = 0.0  # wall time from the first token to the last step

    @property
    def tokens_per_second(self) -> float:
        return self.decode_steps / self.decode_seconds if self.decode_seconds > 0 else 0.0

    def as_dict(self) -> dict:
        return {
            "prompt_tokens": self.prompt_tokens,
            "cached_tokens": self.cached_tokens,
            "completion_tokens": self.completion_tokens,
            "time_to_first_token_s": round(self.prefill_seconds, 4),
            "decode_s": round(self.decode_seconds, 4),
            "tokens_per_second": round(self.tokens_per_second, 2),
        }


@dataclass
class Completion:
    text: str
    finish_reason: str  # "stop" (end token or stop string), "length", "interrupted" or "timeout"
    usage: Usage
    tokens: list[int] = field(default_factory=list)  # the reply's token ids
    logprobs: list[TokenLogprob] | None = None  # the shown tokens' entries, when asked for
