"""Errors a user can act on.

Everything raised as a `PmlError` reaches the user as one line (the CLI prints the
message and exits 2); anything else is a bug and keeps its traceback.
"""


class PmlError(Exception):
    """A problem with the user's input or environment, told in one line."""


class NotFoundError(PmlError):
    """A named model, build, session or file does not exist."""


class InvalidInputError(PmlError):
    """A file, config or message that cannot be used as given."""


class ContextOverflowError(PmlError):
    """The parts of a prompt that must always be sent do not fit the context window."""


class RemoteError(PmlError):
    """A remote engine could not be reached, refused a request or failed in a reply."""


class BusyError(PmlError):
    """Too many requests are already waiting: try again later (the server's 503)."""

    def __init__(self, message: str, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after
