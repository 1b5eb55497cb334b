"""The context packer: what goes into each turn's prompt, within the window.

Budget = num_ctx - max_new_tokens (room for the reply is reserved up front).
Always in: the system prompt, the styles' instructions, the pinned facts, the
few-shot messages and the new message; if these alone do not fit, the turn is
refused with the numbers, never cut silently. Then, in order of priority and each
within its share of what is left: recalled memories, knowledge passages (wrapped
around the new message by `passages.PassagePrompt`), and history turns newest first,
whole turns only. The best recalled memory is the exception to its share (unless
`Shares.replace_history` is off): when it does not fit the share but fits the
window, it is kept and the oldest history turns make room for it. Every count is the length of the prompt rendered with the
model's own chat template, the same text the engine receives.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

from pimpmyllama.errors import ContextOverflowError
from pimpmyllama.prompting.format import ChatFormat
from pimpmyllama.prompting.passages import PassagePrompt
from pimpmyllama.prompting.template import Message


@dataclass(frozen=True)
class Turn:
    """One exchange of the history: a user message and the reply to it."""

    index: int
    user: str
    assistant: str


@dataclass(frozen=True)
class Passage:
    """A piece of text offered to the packer (a knowledge passage or a recalled memory)."""

    text: str
    label: str = ""  # shown before the text, e.g. "[1] (hours.md)"
    score: float | None = None
    source: str = ""  # where it comes from: a document (source#position) or a turn (turn #3)
    document: str = ""  # a knowledge passage's document (its source path)
    chunk: int | None = None  # its chunk's position in the document
    page: int | None = None


@dataclass(frozen=True)
class Section:
    name: str
    tokens: int  # tokens of the section's own text (template markers counted apart)
    kept: int = 1
    dropped: int = 0


@dataclass
class PackedContext:
    messages: list[Message]
    prompt_ids: list[int]
    num_ctx: int
    max_new_tokens: int
    sections: list[Section]
    kept_turns: list[int]  # indexes of the history turns sent, oldest first
    dropped_turns: list[int]  # indexes of the offered history turns left out
    recalled: list[Passage] = field(default_factory=list)
    knowledge: list[Passage] = field(default_factory=list)
    counted_by: str = "the model's own tokenizer"  # the format's: a tokenizer, an endpoint, or an estimate

    @property
    def budget(self) -> int:
        return self.num_ctx - self.max_new_tokens

    @property
    def total_tokens(self) -> int:
        return len(self.prompt_ids)


@dataclass(frozen=True)
class Shares:
    """Fractions of the room left after the always-in parts that recalled memories and
    knowledge passages may take; history takes whatever they leave."""

    recalled: float = 0.2
    knowledge: float = 0.5
    replace_history: bool = True  # the best memory may exceed its share, taking the oldest turns' place


def _block(title: str, lines: list[str]) -> str:
    return title + "\n" + "\n".join(lines)


def compose_system(system: str | None, styles: Sequence[str], pinned: Sequence[str],
                   recalled: Sequence[Passage]) -> str | None:
    """The system message: the system prompt, then the styles' instructions (one a
    line), the pinned facts and the recalled memories, as blocks apart."""
    parts = [system] if system else []
    if styles:
        parts.append("\n".join(styles))
    if pinned:
        parts.append(_block("Facts to keep in mind:", [f"- {fact}" for fact in pinned]))
    if recalled:
        parts.append(_block("From earlier in this conversation:", [f"- {p.text}" for p in recalled]))
    return "\n\n".join(parts) if parts else None


def compose_messages(system: str | None, few_shot: Sequence[Message], turns: Sequence[Turn],
                     message: str, knowledge: Sequence[Passage] = (),
                     wrapper: PassagePrompt = PassagePrompt()) -> list[Message]:
    messages: list[Message] = [{"role": "system", "content": system}] if system else []
    messages.extend({"role": m["role"], "content": m["content"]} for m in few_shot)
    for turn in turns:
        messages.append({"role": "user", "content": turn.user})
        messages.append({"role": "assistant", "content": turn.assistant})
    messages.append({"role": "user", "content": wrapper.render(message, knowledge)})
    return messages


def pack_context(
    fmt: ChatFormat,
    *,
    message: str,
    num_ctx: int,
    max_new_tokens: int,
    system: str | None = None,
    styles: Sequence[str] = (),
    pinned: Sequence[str] = (),
    few_shot: Sequence[Message] = (),
    history: Sequence[Turn] = (),
    recalled: Sequence[Passage] = (),
    knowledge: Sequence[Passage] = (),
    shares: Shares = Shares(),
    wrapper: PassagePrompt = PassagePrompt(),
) -> PackedContext:
    budget = num_ctx - max_new_tokens
    if budget <= 0:
        raise ContextOverflowError(f"max_new_tokens {max_new_tokens} leaves no room in num_ctx {num_ctx}")

    def count(rec: Sequence[Passage], kno: Sequence[Passage], turns: Sequence[Turn]) -> int:
        return fmt.count(compose_messages(compose_system(system, styles, pinned, rec), few_shot, turns, message, kno,
                                         wrapper))

    fixed = count((), (), ())
    if fixed > budget:
        raise ContextOverflowError(_overflow_message(fmt, fixed, budget, num_ctx, max_new_tokens,
                                                     system, styles, pinned, few_shot, message))
    room = budget - fixed
    kept_recalled = _take_within(lambda items: count(items, (), ()), recalled, fixed + int(room * shares.recalled))
    used = count(kept_recalled, (), ())
    kept_knowledge = _take_within(
        lambda items: count(kept_recalled, items, ()), knowledge, used + int(room * shares.knowledge)
    )
    if shares.replace_history and recalled and not kept_recalled and count(recalled[:1], kept_knowledge, ()) <= budget:
        # The best memory is longer than its share: it takes the place of the oldest
        # history turns (it is about an even older one) rather than be lost exactly
        # when the window is small. Further memories stay within the share.
        kept_recalled = list(recalled[:1])
    # Newest turns first, whole turns, as a suffix of the history: the largest k whose
    # last-k turns fit. Rendered length grows with k, so a binary search finds it.
    lo, hi = 0, len(history)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(kept_recalled, kept_knowledge, history[len(history) - mid :]) <= budget:
            lo = mid
        else:
            hi = mid - 1
    kept = list(history[len(history) - lo :])
    dropped = list(history[: len(history) - lo])

    messages = compose_messages(compose_system(system, styles, pinned, kept_recalled), few_shot, kept, message, kept_knowledge,
                                wrapper)
    prompt_ids = fmt.encode(messages)
    tok = fmt.tokenizer.count
    sections = [
        Section("system", tok(system) if system else 0, kept=1 if system else 0),
        Section("styles", sum(tok(s) for s in styles), kept=len(styles)),
        Section("pinned", sum(tok(p) for p in pinned), kept=len(pinned)),
        Section("few-shot", sum(tok(m["content"]) for m in few_shot), kept=len(few_shot)),
        Section("recalled", sum(tok(p.text) for p in kept_recalled), kept=len(kept_recalled),
                dropped=len(recalled) - len(kept_recalled)),
        Section("knowledge", sum(tok(wrapper.passage(p)) for p in kept_knowledge), kept=len(kept_knowledge),
                dropped=len(knowledge) - len(kept_knowledge)),
        Section("history", sum(tok(t.user) + tok(t.assistant) for t in kept), kept=len(kept), dropped=len(dropped)),
        Section("message", tok(message)),
    ]
    sections.append(Section("template", len(prompt_ids) - sum(s.tokens for s in sections)))
    return PackedContext(
        messages=messages,
        prompt_ids=prompt_ids,
        num_ctx=num_ctx,
        max_new_tokens=max_new_tokens,
        sections=sections,
        kept_turns=[t.index for t in kept],
        dropped_turns=[t.index for t in dropped],
        recalled=kept_recalled,
        knowledge=kept_knowledge,
        counted_by=fmt.counted_by,
    )


def _take_within(count, items: Sequence[Passage], limit: int) -> list[Passage]:
    """Items in priority order while the rendered prompt stays within `limit`."""
    kept: list[Passage] = []
    for item in items:
        if count(kept + [item]) > limit:
            break
        kept.append(item)
    return kept


def _overflow_message(fmt, fixed, budget, num_ctx, max_new_tokens, system, styles, pinned, few_shot, message) -> str:
    tok = fmt.tokenizer.count
    parts = [f"message {tok(message)}"]
    if system:
        parts.append(f"system prompt {tok(system)}")
    if styles:
        parts.append(f"styles {sum(tok(s) for s in styles)}")
    if pinned:
        parts.append(f"pinned facts {sum(tok(p) for p in pinned)}")
    if few_shot:
        parts.append(f"few-shot {sum(tok(m['content']) for m in few_shot)}")
    return (
        f"the prompt needs {fixed} tokens ({', '.join(parts)}, plus template markers) but only {budget} fit "
        f"(num_ctx {num_ctx} - max_new_tokens {max_new_tokens}); shorten it or raise num_ctx"
    )
