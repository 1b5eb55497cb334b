"""An OpenAI message list as our packer's parts: the system prompt, the history
turns and the new message (the last one, which must be the user's)."""

from dataclasses import dataclass

from pimpmyllama.prompting.packer import Turn
from pimpmyllama.serving.errors import ApiError
from pimpmyllama.serving.schema import ChatMessage


@dataclass(frozen=True)
class Dialogue:
    system: str | None  # None: the build's own system prompt
    history: list[Turn]
    message: str


def split_messages(messages: list[ChatMessage]) -> Dialogue:
    """System messages (joined) override the build's system prompt; the others must
    alternate user, assistant, ..., user: each pair is a history turn."""
    system = [m.text() for m in messages if m.role in ("system", "developer")]
    chat = [(at, m) for at, m in enumerate(messages) if m.role not in ("system", "developer")]
    if not chat or chat[-1][1].role != "user":
        raise ApiError(400, "the last message must be the user's (it is the one answered)", param="messages")
    for i, (at, m) in enumerate(chat):
        expected = "user" if i % 2 == 0 else "assistant"
        if m.role != expected:
            raise ApiError(400, f"apart from system messages, messages alternate user and assistant: message "
                                f"{at} is {m.role}'s where {expected}'s was expected", param=f"messages.{at}.role")
    texts = [m.text() for _, m in chat]
    history = [Turn(i // 2, texts[i], texts[i + 1]) for i in range(0, len(texts) - 1, 2)]
    return Dialogue("\n\n".join(system) if system else None, history, texts[-1])
