"""The one progress callback every long operation takes.

`progress(stage, completed, total)`: `stage` names what is happening now
("copying weights", "merging tensors"), `total` is None when the stage has no
count. Callers draw it (the CLI as a rich bar); the library never prints.
"""

from collections.abc import Callable

Progress = Callable[[str, int, int | None], None]


def no_progress(stage: str, completed: int, total: int | None) -> None:
    """The callback used when the caller gives none."""
