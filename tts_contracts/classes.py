"""Length classes: the unit of isolation. Short texts never queue behind long ones."""

from __future__ import annotations

from typing import Literal

from . import defaults

LengthClass = Literal["short", "medium", "long"]
LENGTH_CLASSES: tuple[LengthClass, ...] = ("short", "medium", "long")  # priority order, short first
FIFO_QUEUE = "fifo"  # the single queue of `fifo` scheduling (the benchmark baseline)


def length_class_for(
    *, chars: int, short_max_chars: int = defaults.SHORT_MAX_CHARS, medium_max_chars: int = defaults.MEDIUM_MAX_CHARS
) -> LengthClass:
    if chars <= short_max_chars:
        return "short"
    if chars <= medium_max_chars:
        return "medium"
    return "long"


def classes_in_priority_order(names: set[str] | frozenset[str]) -> tuple[LengthClass, ...]:
    """The known classes among `names`, short first; unknown names are the caller's to reject."""
    return tuple(name for name in LENGTH_CLASSES if name in names)
