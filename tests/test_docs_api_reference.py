"""docs/plugins.md's API reference names real import locations, and every constructor
signature it documents is the code's, so a moved or renamed name fails here, not in a plugin."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

from conductor_events.backend import Delivery, SubscribeOptions
from conductor_events.messages import Message

DOC = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"


def import_table() -> list[tuple[str, str]]:
    """(name, module) for each name in the "Where each name lives" table."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("### Where each name lives", 1)[1].split("\n### ", 1)[0]
    rows: list[tuple[str, str]] = []
    for line in section.splitlines():
        cells = line.split(" | ")
        if not line.startswith("| `") or len(cells) < 3:
            continue
        module = re.findall(r"`([\w.]+)`", cells[1])[0]
        rows.extend((name, module) for name in re.findall(r"`(\w+)`", cells[0]))
    return rows


def test_the_table_lists_the_names_plugins_use() -> None:
    names = {name for name, _ in import_table()}
    assert {"hookimpl", "QueueClient", "Delivery", "DeliveryHandle", "Message"} <= names
    assert {"SubscribeOptions", "QueueSettings", "QueueConformance", "check_entry_point"} <= names


@pytest.mark.parametrize(("name", "module"), import_table())
def test_each_name_imports_from_where_the_table_says(name: str, module: str) -> None:
    assert hasattr(importlib.import_module(module), name), f"{module} has no {name}"


def spelled(cls: type) -> str:
    """The constructor as the docs write it: names and defaults, no annotations."""
    parts: list[str] = []
    for parameter in inspect.signature(cls).parameters.values():
        if parameter.kind is parameter.KEYWORD_ONLY and "*" not in parts:
            parts.append("*")
        default = "" if parameter.default is parameter.empty else f"={parameter.default!r}"
        parts.append(parameter.name + default)
    return f"{cls.__name__}({', '.join(parts)})"


@pytest.mark.parametrize(
    ("documented", "callable_"),
    [
        ("Message(payload, id=None, headers=None, key=None, created_at=None)", Message),
        ("Delivery(message, attempt, handle, *, dead_letter_reason=None)", Delivery),
        (
            "SubscribeOptions(group=None, max_in_flight=100, prefetch=10, drain_timeout=30.0)",
            SubscribeOptions,
        ),
    ],
)
def test_documented_constructors_match_the_code(documented: str, callable_: type) -> None:
    assert documented == spelled(callable_)
    assert f"**`{documented}`**" in DOC.read_text(encoding="utf-8")
