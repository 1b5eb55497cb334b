"""The registry of merge methods, by the names mergekit recipes use."""

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.merging.methods import linear, model_stock, nuslerp, passthrough, slerp, task_arithmetic
from pimpmyllama.merging.methods.base import MergeMethod

METHODS: dict[str, MergeMethod] = {
    m.name: m
    for m in [linear.METHOD, slerp.METHOD, nuslerp.METHOD, *task_arithmetic.METHODS, model_stock.METHOD,
              passthrough.METHOD]
}


def get_method(name: str) -> MergeMethod:
    try:
        return METHODS[name]
    except KeyError:
        raise InvalidInputError(f"unknown merge method {name!r} (known: {', '.join(sorted(METHODS))})") from None
