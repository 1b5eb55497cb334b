"""The model's own tokenizer, loaded from a store folder with the `tokenizers` library.

transformers is not imported here: a chat turn needs only tokenizer.json, the
special tokens and the chat template, and importing transformers costs seconds.
"""

import json
import re
from functools import cache, cached_property
from pathlib import Path

from pimpmyllama.errors import InvalidInputError

# Markers that close a turn in the common chat formats; each one counts as an end
# token only if the tokenizer declares it a special token.
_END_MARKERS = (
    "<|im_end|>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "<|endoftext|>",
    "<|end|>",
    "<end_of_turn>",
    "</s>",
)


def _token_text(value) -> str | None:
    if isinstance(value, dict):
        return value.get("content")
    return value


def _read_json(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{path} is not valid JSON: {exc}") from None


def read_chat_template(folder: Path) -> str | None:
    """The chat template saved with a model: chat_template.jinja, or tokenizer_config.json's."""
    file = folder / "chat_template.jinja"
    if file.exists():
        return file.read_text(encoding="utf-8")
    template = _read_json(folder / "tokenizer_config.json").get("chat_template")
    if isinstance(template, list):  # named templates: take the default one
        named = {t.get("name"): t.get("template") for t in template}
        template = named.get("default") or next(iter(named.values()), None)
    return template


@cache
def _unicode_to_byte() -> dict[str, int]:
    """GPT-2's byte-level alphabet reversed: the character that stands for each byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            chars[chr(byte)] = byte
        else:
            chars[chr(256 + extra)] = byte
            extra += 1
    return chars


class Tokenizer:
    def __init__(self, folder: Path):
        from tokenizers import Tokenizer as _Backend

        path = folder / "tokenizer.json"
        if not path.exists():
            raise InvalidInputError(f"{folder} has no tokenizer.json")
        try:
            self._backend = _Backend.from_file(str(path))
        except Exception as exc:  # the tokenizers library raises plain Exceptions
            raise InvalidInputError(f"{path} is not a readable tokenizer: {exc}") from None
        # Some tokenizer.json files carry padding/truncation settings; counting and
        # encoding prompts needs the plain token sequence.
        self._backend.no_padding()
        self._backend.no_truncation()
        # Text is text: a special-token string in it is encoded as ordinary characters.
        # Only a chat template's own markers become special tokens (encode_rendered).
        self._backend.encode_special_tokens = True
        config = _read_json(folder / "tokenizer_config.json")
        self.bos_token = _token_text(config.get("bos_token"))
        self.eos_token = _token_text(config.get("eos_token"))
        self.pad_token = _token_text(config.get("pad_token"))
        self.chat_template = read_chat_template(folder)
        self._generation_eos = _read_json(folder / "generation_config.json").get("eos_token_id")

    @property
    def vocab_size(self) -> int:
        return self._backend.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """Token ids of `text` as plain text: special-token strings in it become ordinary
        characters. `add_special_tokens` adds what the tokenizer's post-processor adds
        (a BOS); the default adds none (a rendered template already holds its BOS)."""
        return self._backend.encode(text, add_special_tokens=add_special_tokens).ids

    def encode_rendered(self, text: str, contents: list[tuple[int, int]]
                        ) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids of a rendered chat template, and each token's character span. The
        special tokens written by the template itself (outside the `contents` spans)
        are special; the contents are plain text. The text between two template markers
        is encoded in one piece, as the tokenizer itself would, so a rendering whose
        contents hold no markers gets exactly the ids of a plain encode with specials."""
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        at = 0
        for start, end, token_id in self._template_markers(text, contents):
            self._encode_piece(text, at, start, ids, offsets)
            ids.append(token_id)
            offsets.append((start, end))
            at = end
        self._encode_piece(text, at, len(text), ids, offsets)
        return ids, offsets

    def _encode_piece(self, text: str, start: int, end: int, ids: list, offsets: list) -> None:
        if start == end:
            return
        encoding = self._backend.encode(text[start:end], add_special_tokens=False)
        ids.extend(encoding.ids)
        offsets.extend((a + start, b + start) for a, b in encoding.offsets)

    def _template_markers(self, text: str, contents: list[tuple[int, int]]):
        """(start, end, id) of every special token outside the content spans."""
        if not self._marker_pattern:
            return
        at = 0
        for start, end in [*sorted(contents), (len(text), len(text))]:
            for match in self._marker_pattern.finditer(text, at, max(at, start)):
                yield match.start(), match.end(), self.special_tokens[match.group()]
            at = max(at, end)

    @cached_property
    def _marker_pattern(self) -> re.Pattern | None:
        # Longest first, so that of two markers starting at one place the longer wins,
        # as in the tokenizer's own matching.
        names = sorted(self.special_tokens, key=len, reverse=True)
        return re.compile("|".join(map(re.escape, names))) if names else None

    def encode_batch(self, texts: list[str], add_special_tokens: bool = False) -> list[list[int]]:
        return [e.ids for e in self._backend.encode_batch(texts, add_special_tokens=add_special_tokens)]

    def count(self, text: str) -> int:
        return len(self.encode(text))

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return self._backend.decode(ids, skip_special_tokens=skip_special_tokens)

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes a token stands for (a byte-level token may hold half a character)."""
        piece = self._backend.id_to_token(token_id) or ""
        if re.fullmatch(r"<0x[0-9A-Fa-f]{2}>", piece):  # sentencepiece's byte fallback
            return bytes([int(piece[3:5], 16)])
        table = _unicode_to_byte()
        if type(self._backend.decoder).__name__ == "ByteLevel" and all(c in table for c in piece):
            return bytes(table[c] for c in piece)
        return self.decode([token_id], skip_special_tokens=False).encode("utf-8")

    def to_json(self) -> str:
        """The tokenizer as tokenizer.json text (what grammar libraries read)."""
        return self._backend.to_str()

    def token_to_id(self, token: str) -> int | None:
        return self._backend.token_to_id(token)

    def id_to_token(self, token_id: int) -> str | None:
        return self._backend.id_to_token(token_id)

    @cached_property
    def special_tokens(self) -> dict[str, int]:
        return {t.content: i for i, t in self._backend.get_added_tokens_decoder().items() if t.special}

    @property
    def eos_token_id(self) -> int | None:
        return self.token_to_id(self.eos_token) if self.eos_token else None

    @property
    def end_of_text_id(self) -> int | None:
        """The token that separates documents in pre-training data."""
        special = self.special_tokens
        for marker in ("<|endoftext|>", "<|end_of_text|>", "</s>"):
            if marker in special:
                return special[marker]
        return self.eos_token_id

    @cached_property
    def end_token_ids(self) -> frozenset[int]:
        """Every token that ends a reply: the generation config's EOS ids, the
        tokenizer's EOS, and the turn-closing markers the vocabulary declares special."""
        ids: set[int] = set()
        eos = self._generation_eos
        if isinstance(eos, int):
            ids.add(eos)
        elif isinstance(eos, list):
            ids.update(i for i in eos if isinstance(i, int))
        if self.eos_token_id is not None:
            ids.add(self.eos_token_id)
        special = self.special_tokens
        ids.update(special[m] for m in _END_MARKERS if m in special)
        return frozenset(ids)
