"""What a reply adds to OpenAI's shapes, as the `pml` field: the knowledge passages it
could cite (with their documents), the session and turn it was stored as, and how the
prompt was spent (the packer's own numbers, as `/context` shows them).

Non-streamed: a top-level `pml` field of the completion. Streamed: a `pml` field on
the chunk that carries `finish_reason`."""

from pimpmyllama.chat.context_report import context_dict, source_dict
from pimpmyllama.serving.chat import Answer


def pml_report(answer: Answer) -> dict:
    """Read once the reply has ended (its turn is stored by then)."""
    context = answer.reply.context
    return {
        "session": answer.session,
        "turn": answer.reply.turn_index,
        "sources": [source_dict(number, p) for number, p in enumerate(context.knowledge, start=1)],
        "context": context_dict(context, answer.evicted),
    }
