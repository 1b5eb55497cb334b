"""Training data formats, recognised from their fields, normalised to three kinds:

- chat (a list of messages): OpenAI `messages`, ShareGPT `conversations`
  (from/value), Alpaca (instruction/input/output/system/history);
- completion (`prompt` + `completion` strings): trained on the completion, which
  ends with the end token;
- text (`text`, or a plain text file): every token trained (pre-training).
"""

from collections.abc import Iterable
from dataclasses import dataclass

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.text import check_texts
from pimpmyllama.training.records import Record

ROLES = ("system", "user", "assistant")
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "model": "assistant", "bot": "assistant"}
FORMATS = ("messages", "sharegpt", "alpaca", "completion", "text")


@dataclass(frozen=True)
class ChatExample:
    messages: tuple[tuple[str, str], ...]  # (role, content)
    origin: str


@dataclass(frozen=True)
class CompletionExample:
    prompt: str
    completion: str
    origin: str


@dataclass(frozen=True)
class TextExample:
    text: str
    origin: str


Example = ChatExample | CompletionExample | TextExample


def detect_format(data: dict) -> str | None:
    if "messages" in data:
        return "messages"
    if "conversations" in data:
        return "sharegpt"
    if "instruction" in data and "output" in data:
        return "alpaca"
    if "prompt" in data and "completion" in data:
        return "completion"
    if "text" in data:
        return "text"
    return None


def _need_str(data: dict, key: str, origin: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise InvalidInputError(f"{origin}: field '{key}' must be a string")
    return value


def _messages(data: dict, origin: str) -> ChatExample:
    raw = data["messages"]
    if not isinstance(raw, list) or not raw:
        raise InvalidInputError(f"{origin}: field 'messages' must be a non-empty list")
    out = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict):
            raise InvalidInputError(f"{origin}: field 'messages[{i}]' must be an object")
        role = m.get("role")
        if role not in ROLES:
            raise InvalidInputError(f"{origin}: field 'messages[{i}].role': unknown role {role!r} (known: {', '.join(ROLES)})")
        content = m.get("content")
        if not isinstance(content, str):
            raise InvalidInputError(f"{origin}: field 'messages[{i}].content' must be a string")
        out.append((role, content))
    return ChatExample(tuple(out), origin)


def _sharegpt(data: dict, origin: str) -> ChatExample:
    raw = data["conversations"]
    if not isinstance(raw, list) or not raw:
        raise InvalidInputError(f"{origin}: field 'conversations' must be a non-empty list")
    out = []
    if isinstance(data.get("system"), str) and data["system"]:
        out.append(("system", data["system"]))
    for i, m in enumerate(raw):
        if not isinstance(m, dict):
            raise InvalidInputError(f"{origin}: field 'conversations[{i}]' must be an object")
        role = SHAREGPT_ROLES.get(m.get("from"))
        if role is None:
            raise InvalidInputError(
                f"{origin}: field 'conversations[{i}].from': unknown role {m.get('from')!r} "
                f"(known: {', '.join(SHAREGPT_ROLES)})"
            )
        value = m.get("value")
        if not isinstance(value, str):
            raise InvalidInputError(f"{origin}: field 'conversations[{i}].value' must be a string")
        out.append((role, value))
    return ChatExample(tuple(out), origin)


def _alpaca(data: dict, origin: str) -> ChatExample:
    instruction = _need_str(data, "instruction", origin)
    output = _need_str(data, "output", origin)
    extra = data.get("input") or ""
    if not isinstance(extra, str):
        raise InvalidInputError(f"{origin}: field 'input' must be a string")
    out = []
    if isinstance(data.get("system"), str) and data["system"]:
        out.append(("system", data["system"]))
    for i, pair in enumerate(data.get("history") or []):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
            raise InvalidInputError(f"{origin}: field 'history[{i}]' must be a [question, answer] pair")
        out += [("user", pair[0]), ("assistant", pair[1])]
    out += [("user", f"{instruction}\n\n{extra}" if extra else instruction), ("assistant", output)]
    return ChatExample(tuple(out), origin)


def parse_record(record: Record, fmt: str) -> Example:
    data, origin = record.data, record.origin
    check_texts(data, origin)
    if fmt == "messages":
        if "messages" not in data:
            raise InvalidInputError(f"{origin}: missing field 'messages'")
        return _messages(data, origin)
    if fmt == "sharegpt":
        if "conversations" not in data:
            raise InvalidInputError(f"{origin}: missing field 'conversations'")
        return _sharegpt(data, origin)
    if fmt == "alpaca":
        return _alpaca(data, origin)
    if fmt == "completion":
        return CompletionExample(_need_str(data, "prompt", origin), _need_str(data, "completion", origin), origin)
    if fmt == "text":
        return TextExample(_need_str(data, "text", origin), origin)
    raise ValueError(fmt)


def parse_records(records: Iterable[Record]) -> tuple[str, list[Example]]:
    """Detect the format from the first record; every record must be of it."""
    fmt = None
    examples: list[Example] = []
    for record in records:
        if fmt is None:
            fmt = detect_format(record.data)
            if fmt is None:
                fields = ", ".join(sorted(record.data)) or "none"
                raise InvalidInputError(
                    f"{record.origin}: unknown data format (fields: {fields}); expected messages, conversations, "
                    "instruction/output, prompt/completion or text"
                )
        examples.append(parse_record(record, fmt))
    if fmt is None:
        raise InvalidInputError("the dataset is empty")
    return fmt, examples
