"""Inline JSON expansion, as Conductor's ``JsonUtils.expand``: JSON held in strings is parsed.

An SNS notification delivered through SQS carries its message as a string:
``{"Type": "Notification", "Message": "{\\"testKey1\\": \\"level1\\"}"}``. Expanded, ``Message``
is an object, so a condition can say ``$.Message.testKey1 == 'level1'``.

Conditions always see the expanded payload (as in Conductor); actions see it when their
``expandInlineJSON`` is true. A string is parsed when it starts with ``{`` or ``[`` and is
valid JSON; anything else stays a string. Two differences from Conductor, both deliberate:
strings directly inside lists are expanded too (Conductor's loop over a list reassigns a local
variable, so they are not), and a parsed value is expanded in turn. The input is never
modified: expansion returns new containers where something changed.
"""

from __future__ import annotations

import json
from typing import Any

_decode = json.JSONDecoder().decode


def expand(value: Any) -> Any:
    """``value`` with every string that holds a JSON object or array replaced by its value."""
    if isinstance(value, dict):
        return _expand_dict(value)
    if isinstance(value, list):
        return _expand_list(value)
    if isinstance(value, str):
        return _expand_string(value)
    return value


def _expand_string(value: str) -> Any:
    if value[:1] in ("{", "["):
        try:
            parsed = _decode(value)
        except ValueError:
            return value
        return expand(parsed)
    return value


def _expand_dict(value: dict[str, Any]) -> dict[str, Any]:
    # Written out per type (no helper call per item): most values are scalars, and this runs
    # for every message.
    changed: dict[str, Any] | None = None
    for key, item in value.items():
        if isinstance(item, str):
            if not item or (item[0] != "{" and item[0] != "["):
                continue
            new = _expand_string(item)
        elif isinstance(item, dict):
            new = _expand_dict(item)
        elif isinstance(item, list):
            new = _expand_list(item)
        else:
            continue
        if new is not item:
            if changed is None:
                changed = dict(value)
            changed[key] = new
    return value if changed is None else changed


def _expand_list(value: list[Any]) -> list[Any]:
    changed: list[Any] | None = None
    for index, item in enumerate(value):
        if isinstance(item, str):
            if not item or (item[0] != "{" and item[0] != "["):
                continue
            new = _expand_string(item)
        elif isinstance(item, dict):
            new = _expand_dict(item)
        elif isinstance(item, list):
            new = _expand_list(item)
        else:
            continue
        if new is not item:
            if changed is None:
                changed = list(value)
            changed[index] = new
    return value if changed is None else changed
