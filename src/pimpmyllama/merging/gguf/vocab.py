"""A tokenizer as llama.cpp's `gpt2` (byte-level BPE) vocabulary: tokens, token types,
merges, special ids and flags, read from tokenizer.json, tokenizer_config.json and
config.json the way convert_hf_to_gguf.py reads them."""

import json
from dataclasses import dataclass, field
from pathlib import Path

from gguf import TokenType

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.prompting.tokenizer import read_chat_template

_SPECIAL_KINDS = ("bos", "eos", "unk", "pad")


@dataclass
class Vocab:
    tokens: list[str]
    types: list[int]
    merges: list[str]
    pre: str  # llama.cpp's name for the pre-tokenizer (how text is split before BPE)
    special: dict[str, int] = field(default_factory=dict)  # bos/eos/unk/pad -> id
    add_bos: bool = False
    add_eos: bool = False
    add_space_prefix: bool = False
    chat_template: str | None = None


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"{path} is not readable JSON ({exc})") from None


def _parts(pre_tokenizer: dict | None) -> list[dict]:
    if not pre_tokenizer:
        return []
    if pre_tokenizer.get("type") == "Sequence":
        return list(pre_tokenizer.get("pretokenizers") or [])
    return [pre_tokenizer]


def _llama3_split(part: dict) -> bool:
    pattern = (part.get("pattern") or {}).get("Regex", "")
    return part.get("type") == "Split" and pattern.startswith("(?i:'s|'t|'re|'ve|'m|'ll|'d)") \
        and "\\p{N}{1,3}" in pattern


def pre_tokenizer_name(pre_tokenizer: dict | None) -> str:
    """llama.cpp's pre-tokenizer for a tokenizer.json `pre_tokenizer`: the splits llama.cpp
    implements that give the same pieces. Anything else is refused rather than guessed,
    since a wrong split tokenizes differently without any error."""
    parts = _parts(pre_tokenizer)
    kinds = [p.get("type") for p in parts]
    if kinds == ["ByteLevel"] and parts[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and parts[0].get("individual_digits") and parts[1].get("use_regex", True):
        return "smollm"
    if kinds == ["Split", "ByteLevel"] and _llama3_split(parts[0]) and not parts[1].get("use_regex", True):
        return "llama-bpe"
    raise InvalidInputError(f"the tokenizer's pre-tokenizer ({' + '.join(map(str, kinds)) or 'none'}) has no "
                            "llama.cpp equivalent known here (known: GPT-2 byte-level, SmolLM, Llama 3)")


def _looks_special(token: str) -> bool:
    return token.startswith("<|") and token.endswith("|>")


def _token_text(value) -> str | None:
    return value.get("content") if isinstance(value, dict) else value


def _adds(post_processor: dict | None, token: str | None, first: bool) -> bool:
    """Whether the tokenizer's post-processor puts `token` first (or last) in a sequence."""
    if not token or not post_processor or post_processor.get("type") != "TemplateProcessing":
        return False
    single = post_processor.get("single") or []
    if not single:
        return False
    item = single[0] if first else single[-1]
    return item.get("SpecialToken", {}).get("id") == token


def read_vocab(folder: Path, vocab_size: int) -> Vocab:
    """The vocabulary of the model in `folder`, padded to `vocab_size` entries with
    unused `[PADn]` tokens as the converter pads it."""
    tokenizer = _read(folder / "tokenizer.json")
    model = tokenizer.get("model") or {}
    if model.get("type") != "BPE":
        raise InvalidInputError(f"only byte-level BPE tokenizers can be exported to GGUF (this one is "
                                f"{model.get('type') or 'missing'})")
    ids = dict(model.get("vocab") or {})
    added = {t["id"]: t for t in tokenizer.get("added_tokens") or []}
    ids.update({t["content"]: i for i, t in added.items()})
    if ids and max(ids.values()) >= vocab_size:
        raise InvalidInputError(f"the tokenizer has ids up to {max(ids.values())}, beyond the model's "
                                f"vocabulary of {vocab_size}")
    by_id = {i: t for t, i in ids.items()}
    tokens, types = [], []
    for i in range(vocab_size):
        token = by_id.get(i)
        if token is None:
            tokens.append(f"[PAD{i}]")
            types.append(TokenType.UNUSED)
        elif i in added:
            tokens.append(token)
            types.append(TokenType.CONTROL if added[i].get("special") or _looks_special(token)
                         else TokenType.USER_DEFINED)
        else:
            tokens.append(token)
            types.append(TokenType.NORMAL)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges") or []]

    config = _read(folder / "tokenizer_config.json")
    model_config = _read(folder / "config.json")
    special = {}
    for kind in _SPECIAL_KINDS:
        text = _token_text(config.get(f"{kind}_token"))
        if text is not None and text in ids:
            special[kind] = ids[text]
        elif isinstance(model_config.get(f"{kind}_token_id"), int):
            special[kind] = model_config[f"{kind}_token_id"]
    post = tokenizer.get("post_processor")
    bos_text, eos_text = by_id.get(special.get("bos", -1)), by_id.get(special.get("eos", -1))
    add_bos = config["add_bos_token"] if isinstance(config.get("add_bos_token"), bool) else _adds(post, bos_text, True)
    add_eos = config["add_eos_token"] if isinstance(config.get("add_eos_token"), bool) else _adds(post, eos_text, False)
    byte_level = next((p for p in _parts(tokenizer.get("pre_tokenizer")) if p.get("type") == "ByteLevel"), {})
    return Vocab(tokens=tokens, types=[int(t) for t in types], merges=merges,
                 pre=pre_tokenizer_name(tokenizer.get("pre_tokenizer")), special=special, add_bos=add_bos,
                 add_eos=add_eos, add_space_prefix=bool(byte_level.get("add_prefix_space", False)),
                 chat_template=read_chat_template(folder))
