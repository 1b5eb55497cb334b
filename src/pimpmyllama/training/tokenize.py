"""Examples to token ids and labels, rendered by the same chat-template code the
engine uses at inference (so training and inference cannot disagree).

Labels are -100 (ignored by the loss) everywhere except what the model must learn
to write: each assistant turn's content and the end-of-turn token that closes it
(that token is how a model learns to stop). For completion data, the completion
and an end token; for text, every token.
"""

from dataclasses import dataclass

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.prompting.format import ChatFormat
from pimpmyllama.training.formats import ChatExample, CompletionExample, Example, TextExample

IGNORE = -100


@dataclass
class TokenizedExample:
    input_ids: list[int]
    labels: list[int]
    origin: str

    @property
    def trained_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)

    def __len__(self) -> int:
        return len(self.input_ids)


class ExampleEncoder:
    def __init__(self, fmt: ChatFormat):
        self.fmt = fmt
        self.tokenizer = fmt.tokenizer
        special = self.tokenizer.special_tokens
        self._end_markers = [t for t, i in special.items() if i in self.tokenizer.end_token_ids]

    def encode(self, example: Example) -> TokenizedExample:
        if isinstance(example, ChatExample):
            return self.encode_chat(example)
        if isinstance(example, CompletionExample):
            return self.encode_completion(example)
        if isinstance(example, TextExample):
            return self.encode_text(example)
        raise TypeError(type(example))

    def assistant_spans(self, messages: list[dict], full: str, origin: str) -> list[tuple[int, int]]:
        """Character spans of each assistant turn in `full`: from where the model starts
        writing to the end of its end-of-turn marker (what follows it, such as a
        newline, belongs to the template, not to the answer)."""
        spans = []
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            before = self.fmt.render(messages[:i], add_generation_prompt=True)
            through = self.fmt.render(messages[: i + 1], add_generation_prompt=False)
            if not (full.startswith(through) and through.startswith(before)):
                raise InvalidInputError(
                    f"{origin}: the chat template does not render conversations as growing prefixes, "
                    "so assistant turns cannot be located"
                )
            turn = through[len(before):]
            cut = max((turn.rfind(m) + len(m) for m in self._end_markers if m in turn), default=len(turn))
            spans.append((len(before), len(before) + cut))
        return spans

    def encode_chat(self, example: ChatExample) -> TokenizedExample:
        messages = [{"role": r, "content": c} for r, c in example.messages]
        if not any(m["role"] == "assistant" for m in messages):
            raise InvalidInputError(f"{example.origin}: no assistant turn to learn from")
        full, ids, offsets = self.fmt.encode_with_offsets(messages, add_generation_prompt=False)
        spans = self.assistant_spans(messages, full, example.origin)
        labels = [
            token if any(start <= off_start < end for start, end in spans) else IGNORE
            for token, (off_start, _) in zip(ids, offsets)
        ]
        return TokenizedExample(ids, labels, example.origin)

    def _eos(self, origin: str) -> int:
        eos = self.tokenizer.eos_token_id
        if eos is None:
            raise InvalidInputError(f"{origin}: the tokenizer has no end token to close a completion with")
        return eos

    def encode_completion(self, example: CompletionExample) -> TokenizedExample:
        # Prompt and completion are tokenized apart, as at inference: the model is
        # given the prompt's tokens and continues from there. Both are plain text:
        # a marker in a record is characters, not a turn boundary.
        prompt = self.tokenizer.encode(example.prompt, add_special_tokens=True)
        completion = self.tokenizer.encode(example.completion) + [self._eos(example.origin)]
        return TokenizedExample(prompt + completion, [IGNORE] * len(prompt) + completion, example.origin)

    def encode_text(self, example: TextExample) -> TokenizedExample:
        ids = self.tokenizer.encode(example.text, add_special_tokens=True)
        end = self.tokenizer.end_of_text_id
        if end is not None:
            ids.append(end)
        return TokenizedExample(ids, list(ids), example.origin)


def text_blocks(examples: list[TokenizedExample], block_size: int) -> list[TokenizedExample]:
    """Pre-training: documents (each closed by the end-of-text token) joined into one
    stream and cut into blocks of `block_size` tokens."""
    stream: list[int] = []
    for example in examples:
        stream.extend(example.input_ids)
    return [
        TokenizedExample(stream[i : i + block_size], stream[i : i + block_size], f"block {i // block_size}")
        for i in range(0, len(stream), block_size)
        if len(stream[i : i + block_size]) > 1
    ]
