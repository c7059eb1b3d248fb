"""Checks of plain API arguments (counts, cursors, flags, choices).

Every public call validates its arguments here so that a wrong type or range raises
InvalidInputError naming the argument and what was expected, never a raw TypeError,
ValueError or OverflowError from deeper down (SQLite binds integers as 64-bit).
"""

from __future__ import annotations

from typing import Any, Iterable

from .errors import InvalidInputError

INT64_MAX = (1 << 63) - 1


def _type_name(value: Any) -> str:
    return type(value).__name__


def integer(value: Any, name: str, *, minimum: int | None = None, maximum: int = INT64_MAX) -> int:
    """An int (bool refused: True is not a count) within [minimum, maximum]."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInputError(f"{name} must be an integer, not {_type_name(value)} {value!r}")
    if minimum is not None and value < minimum:
        raise InvalidInputError(f"{name} must be at least {minimum}, not {value}")
    if value > maximum:
        raise InvalidInputError(f"{name} must be at most {maximum}, not {value}")
    return value


def optional_integer(value: Any, name: str, *, minimum: int | None = None, maximum: int = INT64_MAX) -> int | None:
    return None if value is None else integer(value, name, minimum=minimum, maximum=maximum)


def slice_bound(value: Any, name: str) -> int | None:
    """A Python slice bound: None or any int (negative counts from the end)."""
    if value is None:
        return None
    return integer(value, name, minimum=-INT64_MAX, maximum=INT64_MAX)


def flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInputError(f"{name} must be True or False, not {_type_name(value)} {value!r}")
    return value


def choice(value: Any, name: str, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise InvalidInputError(f"{name} must be one of {', '.join(map(repr, allowed))}, not {value!r}")
    return value
