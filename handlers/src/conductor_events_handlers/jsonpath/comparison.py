"""Jayway JsonPath's filter comparisons (``== < =~ in nin subsetof anyof noneof size empty``).

Jayway compares numbers by value and lets a number equal a string that reads as it
(``1 == '1'``), never ``true`` and ``1``; ``<`` and friends compare two numbers or two strings,
nothing else; ``=~`` is a whole match.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from conductor_events_handlers.jsonpath.functions import is_number

_DECIMAL = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _as_number(text: str) -> Decimal | None:
    if not _DECIMAL.fullmatch(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern only lets numbers through
        return None


def json_equal(a: Any, b: Any) -> bool:
    """Jayway's ``==``: numbers by value, a number and a string that reads as it alike,
    ``true`` never ``1``, lists and objects item by item."""
    if is_number(a) and is_number(b):
        return bool(a == b)
    if is_number(a) and isinstance(b, str):
        a, b = b, a
    if isinstance(a, str) and is_number(b):
        number = _as_number(a)
        return number is not None and number == Decimal(repr(b))
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def _contains(items: Any, value: Any) -> bool:
    return isinstance(items, list) and any(json_equal(value, item) for item in items)


def _as_list(value: Any) -> list[Any] | None:
    return value if isinstance(value, list) else None


def _order(op: str, a: Any, b: Any) -> bool:
    if not ((is_number(a) and is_number(b)) or (isinstance(a, str) and isinstance(b, str))):
        return False
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


def _matches(value: Any, pattern: Any) -> bool:
    if not isinstance(pattern, re.Pattern):
        return False
    if isinstance(value, list):
        return any(_matches(item, pattern) for item in value)
    if is_number(value):
        value = repr(value)
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def compare(op: str, a: Any, b: Any) -> bool:
    """Whether ``a op b`` holds, as Jayway evaluates it."""
    if op == "==":
        return json_equal(a, b)
    if op in ("!=", "<>"):
        return not json_equal(a, b)
    if op in ("<", "<=", ">", ">="):
        return _order(op, a, b)
    if op == "=~":
        return _matches(a, b)
    if op == "in":
        return _contains(b, a)
    if op == "nin":
        return not _contains(b, a)
    if op == "contains":
        if isinstance(a, str) and isinstance(b, str):
            return b in a
        return _contains(a, b)
    if op in ("subsetof", "anyof", "noneof"):
        left, right = _as_list(a), _as_list(b)
        if left is None or right is None:
            return False
        if op == "subsetof":
            return all(_contains(right, item) for item in left)
        found = any(_contains(right, item) for item in left)
        return found if op == "anyof" else not found
    if op == "size":
        return isinstance(a, list | str | dict) and is_number(b) and len(a) == int(b)
    if op == "empty":
        if not isinstance(a, list | str | dict) or not isinstance(b, bool):
            return False
        return (len(a) == 0) == b
    return False
