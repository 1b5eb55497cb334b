"""Silencing transformers: no warnings below errors, no tqdm bars.

Everything here that loads a model through transformers (or sentence-transformers)
calls `quiet_transformers()` first, so the terminal shows only what the CLI draws.
Idempotent and cheap; it imports transformers' logging module, so call it where
transformers is about to be imported anyway (never at start-up).
"""


def quiet_transformers() -> None:
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
