"""Log-probabilities of the tokens a reply picked, as the model saw them: the
log-softmax of the raw logits, before penalties, temperature and any grammar mask
(OpenAI's `logprobs`). Computed only for a reply that asks for them.

A streamed reply's text is held back while it may begin a stop string; each token's
entry travels with the text piece that releases the token's text (a `Piece`), so a
client never sees an entry before its text, nor the entries of a stop string's tokens.
"""

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TokenLogprob:
    token: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()  # the likeliest tokens and their log-probs, best first


def token_logprob(logits: torch.Tensor, token: int, top_n: int) -> TokenLogprob:
    """The entry of `token` picked from `logits` [vocab], with the `top_n` likeliest."""
    return token_logprob_from(torch.log_softmax(logits.float().reshape(-1), dim=-1), token, top_n)


def prompt_logprobs(logits: torch.Tensor, ids: list[int], top_n: int) -> list[TokenLogprob | None]:
    """Each prompt token's entry given the tokens before it, from the logits of every
    prompt position [len(ids), vocab]; the first token has none (None)."""
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    entries: list[TokenLogprob | None] = [None]
    for at in range(1, len(ids)):
        entries.append(token_logprob_from(logprobs[at - 1], ids[at], top_n))
    return entries


def token_logprob_from(logprobs: torch.Tensor, token: int, top_n: int) -> TokenLogprob:
    """The entry of `token` from log-probs already computed [vocab]."""
    top: tuple = ()
    if top_n > 0:
        values, ids = torch.topk(logprobs, min(top_n, logprobs.numel()))
        top = tuple(zip(ids.tolist(), values.tolist()))
    return TokenLogprob(token, float(logprobs[token]), top)


class Piece(str):
    """A text piece of a reply, carrying the log-prob entries of the tokens whose
    text it releases (empty text is possible: the entries of a token shown no further)."""

    logprobs: tuple[TokenLogprob, ...]

    def __new__(cls, text: str, logprobs: tuple[TokenLogprob, ...] = ()):
        piece = super().__new__(cls, text)
        piece.logprobs = tuple(logprobs)
        return piece


def worth_sending(delta: str) -> bool:
    """Whether a step's output has anything for the consumer: text, or entries."""
    return bool(delta) or bool(getattr(delta, "logprobs", ()))
