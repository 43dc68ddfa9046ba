"""Whether a backend's source keeps to the queue contract's documented extension hooks.

A backend extends :class:`~conductor_events.backend.Subscription` through the hooks documented
in docs/plugins.md (``_fetch``, ``_close``, ``_ack_many``, ``_on_settled``,
``_discard_buffered``) and touches no other underscore attribute of a core class: the core
changes its internals freely, and a backend that read or wrote them would break silently (or
break the core's bookkeeping, as a backend that set a delivery's state could).
:func:`core_internals_used` reads a backend's source (it imports nothing) and names each place
that does.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

from conductor_events.backend import (
    Delivery,
    DeliveryHandle,
    QueueClient,
    SubscribeOptions,
    Subscription,
)

EXTENSION_HOOKS = frozenset({"_fetch", "_close", "_ack_many", "_on_settled", "_discard_buffered"})
"""The underscore names of :class:`Subscription` that backends implement or call."""


class _Probe(Subscription):
    async def _fetch(self, max_messages: int, timeout: float) -> list[Delivery]:
        return []


def _private(names: Iterable[str]) -> frozenset[str]:
    return (
        frozenset(n for n in names if n.startswith("_") and not n.startswith("__"))
        - EXTENSION_HOOKS
    )


def _subscription_internals() -> frozenset[str]:
    return _private({*vars(Subscription), *vars(_Probe(SubscribeOptions()))})


def core_internals_used(paths: Iterable[Path]) -> list[str]:
    """``FILE:LINE: <what>`` for each use of a core class's internals in the given Python files
    (directories are searched for ``*.py``): an underscore attribute of ``Subscription`` other
    than the extension hooks used on ``self`` in a class deriving from it, or any core class's
    underscore attribute used on another object (``delivery._state``, ``sub._buffer``).

    A class deriving from ``Subscription`` through a base of the backend's own is not followed;
    its uses on other objects are still found.
    """
    subscription = _subscription_internals()
    everywhere = subscription | _private(
        {*vars(Delivery), *Delivery.__slots__, *vars(DeliveryHandle), *vars(QueueClient)}
    )
    found: list[str] = []
    for path in _python_files(paths):
        tree = ast.parse(path.read_text(), str(path))
        for node, in_subscription in _attributes(tree):
            name = node.attr
            on_self = isinstance(node.value, ast.Name) and node.value.id == "self"
            if on_self and in_subscription and name in subscription:
                found.append(f"{path}:{node.lineno}: uses Subscription.{name} on self")
            elif not on_self and name in everywhere:
                found.append(f"{path}:{node.lineno}: uses the core's {name} of another object")
    return found


def _python_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return files


def _attributes(tree: ast.AST) -> Iterable[tuple[ast.Attribute, bool]]:
    """Every attribute access, and whether it is inside a class deriving from Subscription."""

    def walk(node: ast.AST, in_subscription: bool) -> Iterable[tuple[ast.Attribute, bool]]:
        if isinstance(node, ast.ClassDef):
            in_subscription = any(_base_name(base) == "Subscription" for base in node.bases)
        if isinstance(node, ast.Attribute):
            yield node, in_subscription
        for child in ast.iter_child_nodes(node):
            yield from walk(child, in_subscription)

    return walk(tree, False)


def _base_name(base: ast.expr) -> str | None:
    if isinstance(base, ast.Name):
        return base.id
    if isinstance(base, ast.Attribute):
        return base.attr
    return None
