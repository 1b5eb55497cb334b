"""Text handed over by a user must be real Unicode text.

Python turns bytes that are not UTF-8 (in argv, or read with `surrogateescape`) into
lone surrogates, which no tokenizer, database or terminal accepts; `check_text`
refuses them with one line that names the problem and where it is.
"""

import re

from pimpmyllama.errors import InvalidInputError

_SURROGATE = re.compile("[\ud800-\udfff]")


def check_text(text: str, what: str) -> str:
    """`text` unchanged, or InvalidInputError when it holds a lone surrogate."""
    found = _SURROGATE.search(text)
    if found is None:
        return text
    code = ord(found.group())
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, escaped by Python
        raise InvalidInputError(
            f"{what} is not valid UTF-8 (byte 0x{code - 0xDC00:02x} at character {found.start()})"
        )
    raise InvalidInputError(f"{what} holds a lone surrogate U+{code:04X} at character {found.start()}, "
                            "which is not text")


def check_texts(document, source: str, where: tuple = ()) -> None:
    """`check_text` on every string of a parsed document (YAML, JSON): keys, values and
    list items, naming the field, as in `data.jsonl:3: 'messages.0.content'`. JSON and
    YAML escapes can spell lone surrogates ("\\udcff")."""
    if isinstance(document, str):
        check_text(document, f"{source}: '{'.'.join(map(str, where)) or '(top level)'}'")
    elif isinstance(document, dict):
        for key, item in document.items():
            check_texts(key, source, where)
            check_texts(item, source, (*where, key))
    elif isinstance(document, list):
        for i, item in enumerate(document):
            check_texts(item, source, (*where, i))
