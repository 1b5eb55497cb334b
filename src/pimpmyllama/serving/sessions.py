"""A chat request in a session (`pml.session`), as `pml chat --session` runs one: the
session's system override, pins, history window and long-term memory make the prompt,
and the turn is stored in it once the reply ends.

The session holds the history, so a request sends only the new user message (system
messages allowed); earlier user/assistant messages are refused rather than mixed in.
A new session is created only once the turn is known to fit, so a refused request
leaves no session behind."""

from dataclasses import dataclass

from pimpmyllama.chat.conversation import Conversation
from pimpmyllama.chat.opening import knowledge_for
from pimpmyllama.memory.sessions import SessionStore
from pimpmyllama.names import check_name
from pimpmyllama.prompting.build import Build
from pimpmyllama.prompting.packer import PackedContext, Turn
from pimpmyllama.serving.errors import ApiError, naming
from pimpmyllama.storage.db import open_database


@dataclass
class SessionTurn:
    conversation: Conversation
    context: PackedContext
    evicted: list[int]  # turns that had left the session's window before this one


def pack_in_session(build: Build, model_ref: str, engine, name: str, message: str,
                    history: list[Turn]) -> SessionTurn:
    """The conversation and packed prompt for `message` in the session `name` (created
    if new, its build set to `model_ref`)."""
    if history:
        raise ApiError(400, "with pml.session, send only the new user message (and any system messages): the "
                            "session holds the history", param="messages")
    with naming("pml.session"):
        check_name(name, "session")
    sessions = SessionStore(open_database())
    store = knowledge_for(build, sessions.db)
    session = sessions.find(name)
    conversation = Conversation(engine, build, sessions=sessions, session=session, knowledge=store)
    context = conversation.pack(message)
    if session is None:
        # A new session has no history, pins or memories: the prompt packed without it is its prompt.
        session = sessions.create(name, model_ref)
        conversation = Conversation(engine, build, sessions=sessions, session=session, knowledge=store)
    elif session.build != model_ref:
        sessions.set_build(session, model_ref)
    return SessionTurn(conversation, context, conversation.evicted_turns())
