"""Jayway JsonPath's path functions (``length()``, ``max()``, ...), as plain functions of a value.

Each raises ``TypeError``, ``ValueError`` or ``IndexError`` where Jayway throws (``max()`` of
no numbers, ``first()`` of an empty list); :func:`call` turns that into Conductor's ``null``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any


def _numbers(value: Any) -> list[float]:
    if not isinstance(value, list):
        raise TypeError("not a list")
    numbers = [float(v) for v in value if is_number(v)]
    if not numbers:
        raise ValueError("no numbers")
    return numbers


def length(value: Any) -> int | None:
    return len(value) if isinstance(value, list | dict) else None


def _avg(value: Any) -> float:
    numbers = _numbers(value)
    return math.fsum(numbers) / len(numbers)


def _stddev(value: Any) -> float:
    numbers = _numbers(value)
    mean = math.fsum(numbers) / len(numbers)
    return math.sqrt(math.fsum((n - mean) ** 2 for n in numbers) / len(numbers))


def _first(value: Any) -> Any:
    if not isinstance(value, list):
        raise TypeError("not a list")
    return value[0]


def _last(value: Any) -> Any:
    if not isinstance(value, list):
        raise TypeError("not a list")
    return value[-1]


FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "length": length,
    "size": length,
    "min": lambda v: min(_numbers(v)),
    "max": lambda v: max(_numbers(v)),
    "avg": _avg,
    "stddev": _stddev,
    "sum": lambda v: math.fsum(_numbers(v)),
    "first": _first,
    "last": _last,
    "keys": lambda v: list(v) if isinstance(v, dict) else None,
}


def call(function: Callable[[Any], Any], value: Any, failed: Any = None) -> Any:
    """``function(value)``, or ``failed`` where Jayway would throw."""
    try:
        return function(value)
    except (TypeError, ValueError, IndexError):
        return failed


def is_number(value: Any) -> bool:
    """A JSON number: ``true`` and ``false`` are not numbers."""
    return isinstance(value, int | float) and not isinstance(value, bool)
