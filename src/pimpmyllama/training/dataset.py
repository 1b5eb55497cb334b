"""From data files to tokenized training and evaluation examples."""

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.prompting.format import ChatFormat
from pimpmyllama.training.formats import Example, TextExample, parse_records
from pimpmyllama.training.records import read_records
from pimpmyllama.training.tokenize import ExampleEncoder, TokenizedExample, text_blocks


@dataclass
class PreparedData:
    format: str
    train: list[TokenizedExample]
    eval: list[TokenizedExample]
    too_long: list[str]  # origins of the examples dropped for exceeding max_length
    data_hash: str


def data_hash(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def load_examples(paths: list[Path]) -> tuple[str, list[Example]]:
    """All files must hold the same format."""
    fmt, examples = None, []
    for path in paths:
        file_format, file_examples = parse_records(read_records(path))
        if fmt is not None and file_format != fmt and {fmt, file_format} != {"text"}:
            raise InvalidInputError(f"{path}: format {file_format}, but earlier files are {fmt}")
        fmt = fmt or file_format
        examples.extend(file_examples)
    if not examples:
        raise InvalidInputError("the dataset is empty")
    return fmt, examples


def prepare(paths: list[Path], chat_format: ChatFormat, *, kind: str, max_length: int, eval_split: float,
            seed: int) -> PreparedData:
    if not paths:
        raise InvalidInputError("no data files given")
    fmt, examples = load_examples(paths)
    if kind == "pretrain" and fmt != "text":
        raise InvalidInputError(f"pre-training takes plain text (files or 'text' records), not {fmt} data")
    encoder = ExampleEncoder(chat_format)
    encoded = [encoder.encode(e) for e in examples]
    if kind == "pretrain" or (fmt == "text" and all(isinstance(e, TextExample) for e in examples)):
        encoded, too_long = text_blocks(encoded, max_length), []
    else:
        too_long = [e.origin for e in encoded if len(e) > max_length]
        encoded = [e for e in encoded if len(e) <= max_length]
    if not encoded:
        raise InvalidInputError(f"no example fits max_length {max_length} ({len(too_long)} too long)")
    order = list(range(len(encoded)))
    random.Random(seed).shuffle(order)
    n_eval = int(round(len(encoded) * eval_split)) if eval_split > 0 and len(encoded) >= 10 else 0
    n_eval = max(n_eval, 1) if eval_split > 0 and len(encoded) >= 10 else n_eval
    held = set(order[:n_eval])
    return PreparedData(
        format=fmt,
        train=[e for i, e in enumerate(encoded) if i not in held],
        eval=[e for i, e in enumerate(encoded) if i in held],
        too_long=too_long,
        data_hash=data_hash(paths),
    )
