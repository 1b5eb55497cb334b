"""One conversation with a build, turn by turn, remembered in a session."""

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from pimpmyllama.chat.sources import knowledge_passages, recalled_passages
from pimpmyllama.errors import InvalidInputError
from pimpmyllama.generation.engine import Completion, GenerationParams
from pimpmyllama.generation.sampling import SamplingParams
from pimpmyllama.knowledge.embedders import load_embedder
from pimpmyllama.memory.recall import MemoryStore
from pimpmyllama.memory.sessions import Session, SessionStore
from pimpmyllama.prompting.build import Build, Parameters
from pimpmyllama.prompting.packer import PackedContext, Shares, Turn, pack_context
from pimpmyllama.prompting.styles import resolve_styles
from pimpmyllama.text import check_text

if TYPE_CHECKING:
    from pimpmyllama.knowledge.store import KnowledgeStore


def generation_params(p: Parameters) -> GenerationParams:
    sampling = SamplingParams(
        temperature=p.temperature,
        top_k=p.top_k,
        top_p=p.top_p,
        repeat_penalty=p.repeat_penalty,
        repeat_last_n=p.repeat_last_n,
        seed=p.seed,
        presence_penalty=p.presence_penalty,
        frequency_penalty=p.frequency_penalty,
    )
    return GenerationParams(max_new_tokens=p.max_new_tokens, sampling=sampling, stop=tuple(p.stop))


class Reply:
    """Iterate for the reply's text as it streams; afterwards `completion` holds the
    whole reply and its usage, and the turn has been stored (when in a session)."""

    def __init__(self, conversation: "Conversation", message: str, context: PackedContext, generation):
        self._conversation = conversation
        self._message = message
        self.context = context
        self._generation = generation
        self.completion: Completion | None = None
        self.turn_index: int | None = None

    def __iter__(self) -> Iterator[str]:
        try:
            yield from self._generation
        finally:
            self._ended()

    async def __aiter__(self) -> AsyncIterator[str]:
        """The same, awaited, for a generation that can be (generation/batching.py);
        abandoning it stops the generation."""
        try:
            async for piece in self._generation:
                yield piece
        finally:
            self._generation.close()
            self._ended()

    def _ended(self) -> None:
        self.completion = self._generation.completion
        self.turn_index = self._conversation._record(self._message, self.context, self.completion)

    def text(self) -> str:
        for _ in self:
            pass
        return self.completion.text


class Conversation:
    def __init__(self, engine, build: Build, *, sessions: SessionStore | None = None, session: Session | None = None,
                 knowledge: "KnowledgeStore | None" = None):
        self.engine = engine
        self.build = build
        self.sessions = sessions
        self.session = session
        self.knowledge = knowledge
        if build.knowledge and knowledge is None:
            raise InvalidInputError("this build searches knowledge bases, but no knowledge store was given")
        self.memory = None
        if session is not None and build.memory.enabled:
            self.memory = MemoryStore(sessions.db, load_embedder(build.memory.embedder))
        self.styles = resolve_styles(build.styles)
        self.format = engine.chat_format(build.template)
        self.parameters = build.parameters.for_model(engine.context_length, engine.sampling_defaults)

    @property
    def system(self) -> str | None:
        if self.session is not None and self.session.system is not None:
            return self.session.system or None
        return self.build.system

    @property
    def pinned(self) -> list[str]:
        extra = [p.text for p in self.sessions.pins(self.session)] if self.session else []
        return list(self.build.pinned) + extra

    def history(self) -> list[Turn]:
        if self.session is None:
            return []
        return [t.as_turn() for t in self.sessions.window(self.session)]

    def pack(self, message: str, history: list[Turn] | None = None) -> PackedContext:
        """The prompt for `message`; `history` (turns given by the caller, e.g. an API
        request's earlier messages) replaces the session's."""
        p = self.parameters
        knowledge = knowledge_passages(self.knowledge, self.build, message) if self.build.knowledge and message else []
        recalled = recalled_passages(self.memory, self.session, self.build, message) if self.memory and message else []
        return pack_context(
            self.format,
            message=message,
            num_ctx=p.num_ctx,
            max_new_tokens=p.max_new_tokens,
            system=self.system,
            styles=[s.instruction for s in self.styles],
            pinned=self.pinned,
            few_shot=self.build.few_shot(),
            history=self.history() if history is None else history,
            recalled=recalled,
            knowledge=knowledge,
            shares=Shares(recalled=self.build.memory.share, knowledge=self.build.retrieval.share,
                          replace_history=self.build.memory.replace_history),
            wrapper=self.build.retrieval.passage_prompt(),
        )

    def send(self, message: str, history: list[Turn] | None = None) -> Reply:
        return self.answer(message, self.pack(check_text(message, "the message"), history))

    def answer(self, message: str, context: PackedContext, decoding: dict | None = None) -> Reply:
        """The reply to `message` from a context already packed for it (see `pack`);
        `decoding`: GenerationParams fields to set beyond the build's (logprobs, grammar)."""
        params = replace(generation_params(self.parameters), **(decoding or {}))
        if getattr(self.engine, "sends_messages", False):  # a remote engine: it renders the messages itself
            generation = self.engine.generate_messages(context.messages, params, self.parameters.num_ctx,
                                                       context.total_tokens)
        else:
            generation = self.engine.generate(context.prompt_ids, params, self.parameters.num_ctx)
        return Reply(self, message, context, generation)

    def _record(self, message: str, context: PackedContext, completion: Completion) -> int | None:
        status = "interrupted" if completion.finish_reason == "interrupted" else "complete"
        window_start = None
        if context.dropped_turns:
            window_start = context.kept_turns[0] if context.kept_turns else context.dropped_turns[-1] + 1
        if self.session is None:
            return None
        before = self.session.window_start
        index = self.sessions.add_turn(
            self.session,
            message,
            completion.text,
            status=status,
            finish_reason=completion.finish_reason,
            model=self.engine.name,
            prompt_tokens=completion.usage.prompt_tokens,
            completion_tokens=completion.usage.completion_tokens,
            window_start=window_start,
        )
        if self.memory is not None and self.session.window_start > before:
            # The turns that just left the window go to long-term memory.
            evicted = [t for t in self.sessions.turns(self.session, since=before) if t.index < self.session.window_start]
            self.memory.index(self.session, evicted)
        return index

    # REPL commands (they need a session) ----------------------------------------
    def _need_session(self) -> Session:
        if self.session is None:
            raise InvalidInputError("this needs a session")
        return self.session

    def set_system(self, text: str | None) -> None:
        self.sessions.set_system(self._need_session(), text)

    def pin(self, fact: str) -> None:
        self.sessions.pin(self._need_session(), fact)

    def unpin(self, number: int) -> str:
        """Remove a pin by its number in `pinned` (the build's pins come first and stay)."""
        fixed = len(self.build.pinned)
        if 1 <= number <= fixed:
            raise InvalidInputError(f"pin {number} comes from the build; edit the build to change it")
        if number < 1:
            raise InvalidInputError(f"no pin number {number}")
        return self.sessions.unpin(self._need_session(), number - fixed)

    def reset(self) -> int:
        return self.sessions.reset(self._need_session())

    def memories(self):
        if self.memory is None:
            raise InvalidInputError("long-term memory is off for this build")
        return self.memory.list(self._need_session())

    def forget(self, number: int):
        if self.memory is None:
            raise InvalidInputError("long-term memory is off for this build")
        return self.memory.forget(self._need_session(), number)

    def evicted_turns(self) -> list[int]:
        """Indexes of the turns that have left the rolling window for good."""
        if self.session is None:
            return []
        return [t.index for t in self.sessions.turns(self.session) if t.index < self.session.window_start]
