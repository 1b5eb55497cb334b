"""Token log-probs in OpenAI's shapes: chat's `{"content": [{token, logprob, bytes,
top_logprobs}]}` and the legacy completions' `{tokens, token_logprobs, top_logprobs,
text_offset}`."""

from pimpmyllama.generation.logprobs import TokenLogprob


def _token(tokenizer, token: int) -> tuple[str, list[int]]:
    raw = tokenizer.token_bytes(token)
    return raw.decode("utf-8", errors="replace"), list(raw)


def _chat_entry(tokenizer, token: int, logprob: float) -> dict:
    text, raw = _token(tokenizer, token)
    return {"token": text, "logprob": logprob, "bytes": raw}


def chat_logprobs(tokenizer, entries: list[TokenLogprob] | None) -> dict | None:
    """A choice's `logprobs` (None when not asked for)."""
    if entries is None:
        return None
    return {"content": [{**_chat_entry(tokenizer, e.token, e.logprob),
                         "top_logprobs": [_chat_entry(tokenizer, t, lp) for t, lp in e.top]} for e in entries],
            "refusal": None}


def legacy_logprobs(tokenizer, entries: list[TokenLogprob | None], tokens: list[int], start: int = 0) -> dict:
    """The legacy shape for `tokens` (an entry each; None: the prompt's first token, which
    has no log-prob); text offsets count from `start` characters."""
    texts = [_token(tokenizer, t)[0] for t in tokens]
    offsets, at = [], start
    for text in texts:
        offsets.append(at)
        at += len(text)
    return {
        "tokens": texts,
        "token_logprobs": [None if e is None else e.logprob for e in entries],
        "top_logprobs": [None if e is None else {_token(tokenizer, t)[0]: lp for t, lp in e.top} for e in entries],
        "text_offset": offsets,
    }
