"""JSONPath as Jayway JsonPath reads it with ``SUPPRESS_EXCEPTIONS`` (what Conductor uses).

Paths are parsed and evaluated by `python-jsonpath`_; this module is the thin layer that
makes its answers Jayway's, because Conductor users write their ``${...}`` paths for Jayway
and the two dialects differ in ways a handler would notice:

* **Result shape.** A *definite* path (names and single indexes, and a last ``['a','b']``,
  which Jayway merges into one object) gives the value, or ``None`` when any part is missing;
  any other path gives the list of matches, empty when none. python-jsonpath always gives
  the list of matches.
* **Functions at the end of a path** (``length() size() min() max() avg() stddev() sum()
  first() last() keys()``), also inside filters (``[?(@.items.length() > 2)]``). They apply
  to the value of a definite path; after a path that starts with a deep scan
  (``$..book.length()``), to all of its matches together (``length()`` counts their
  children); after any other indefinite path, to each match, giving a list. A function
  that cannot apply (``max()`` of no numbers, ``first()`` of an empty list) makes the
  whole path read as ``None``, as Conductor reads a path Jayway throws on.
* **Filter operators** ``in nin subsetof anyof noneof size empty`` (as infix words) with
  Jayway's comparison rules: numbers compare by value and equal a string that reads as
  the same number (``1 == '1'``), ``true`` never equals ``1``, a missing property compares
  as ``null``, ``<`` and friends compare only two numbers or two strings, ``=~`` is a whole
  match (flags ``i m s x``) of a string or of any string in a list.
* **A filter on an object** tests the object itself (``$.order[?(@.paid)]`` gives
  ``[order]`` when it is paid), as in Jayway, where python-jsonpath would test its values;
  after a deep scan (``$..[?(@.paid)]``) it tests every object once.
* **Names.** A dot name may hold anything but spaces and the path's own punctuation
  (``$.2024``, ``$.x-request-id``, ``$.foo:bar``), as in Jayway; a path may leave out the
  root (``orderId`` is ``$.orderId``). python-jsonpath's own extensions that Jayway does
  not have (``|`` and ``&`` between paths, ``^``, ``_``, ``#``) are turned off.

A path that cannot be compiled (unbalanced brackets, an unknown function) is a
:class:`JsonPathError` when the path is compiled, that is, when a handler is loaded, never
while a message is processed. Compiled paths are cached, and a definite path without a
function (most templates are ``${a.b}``-like, and they run for every message) is read by
walking a tuple of keys, without going through the library at all.

The dialect (lexer, parser, filters) is :mod:`.dialect`, Jayway's comparison rules
:mod:`.comparison` and its functions :mod:`.functions`. Known differences from Jayway are
listed in ``docs/event-handlers.md``.

.. _python-jsonpath: https://jg-rp.github.io/python-jsonpath/
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonpath
from jsonpath.segments import JSONPathChildSegment, JSONPathRecursiveDescentSegment
from jsonpath.selectors import IndexSelector, NameSelector, SliceSelector
from jsonpath.token import TOKEN_EOF

from conductor_events_handlers.jsonpath.dialect import ENVIRONMENT
from conductor_events_handlers.jsonpath.functions import FUNCTIONS, call, length

_MISSING: Any = object()


class JsonPathError(ValueError):
    """A path that cannot be compiled."""


@dataclass(frozen=True, slots=True)
class JsonPath:
    """A compiled path; ``read(document)`` evaluates it."""

    text: str
    definite: bool
    read: Callable[[Any], Any]
    """The value at this path (definite), or the list of matches (indefinite)."""


@functools.lru_cache(maxsize=4096)
def compile_path(expression: str) -> JsonPath:
    """Compile a JSONPath expression as Jayway does, prefixing ``$.`` when the root is left out.

    Raises:
        JsonPathError: the expression is not a path this module reads.
    """
    written = expression.strip()
    if not written:
        raise JsonPathError("empty path")
    if written[0] == "$":
        text = written
    elif written[0] == "@":
        text = "$" + written[1:]
    else:
        text = ("$" if written[0] == "[" else "$.") + written
    added = len(text) - len(written)
    function: Callable[[Any], Any] | None = None
    call = _TRAILING_CALL.search(text)
    if call is not None:
        function = _function_named(call.group(1), call.group(2), expression)
        text = text[: call.start()]
    try:
        path = ENVIRONMENT.compile(text)
    except jsonpath.JSONPathError as exc:
        raise JsonPathError(_describe(exc, expression, added)) from None
    if not isinstance(path, jsonpath.JSONPath):  # pragma: no cover - unions are turned off
        raise JsonPathError(f"not a single path: {expression!r}")
    for segment in path.segments:
        for selector in segment.selectors:
            if isinstance(selector, SliceSelector) and selector.slice.step is not None:
                raise JsonPathError(f"a slice takes no step in Jayway: {expression.strip()!r}")
    return _build(expression, path, function)


# -- reading -------------------------------------------------------------------------------


def _build(text: str, path: jsonpath.JSONPath, function: Callable[[Any], Any] | None) -> JsonPath:
    segments = tuple(path.segments)
    merged = _merged_names(segments)
    read: Callable[[Any], Any]
    if merged is not None:
        prefix = _build(text, jsonpath.JSONPath(env=ENVIRONMENT, segments=segments[:-1]), None)
        definite = prefix.definite
        read = functools.partial(_read_merged, prefix.read, definite, merged)
    elif path.singular_query():
        definite = True
        read = functools.partial(_read_keys, tuple(_key(segment) for segment in segments))
    else:
        definite = False
        read = functools.partial(_read_matches, path)
    if function is None:
        return JsonPath(text, definite, read)
    if definite:
        return JsonPath(text, True, functools.partial(_apply_to_value, read, function))
    if segments and isinstance(segments[0], JSONPathRecursiveDescentSegment):
        return JsonPath(text, True, functools.partial(_apply_to_all, read, function))
    return JsonPath(text, False, functools.partial(_apply_to_each, read, function))


def _key(segment: object) -> str | int:
    """The name or index of one segment of a singular query."""
    assert isinstance(segment, JSONPathChildSegment)
    (selector,) = segment.selectors
    if isinstance(selector, NameSelector):
        return selector.name
    assert isinstance(selector, IndexSelector)
    return selector.index


def _read_keys(keys: tuple[str | int, ...], node: Any) -> Any:
    """The fast path: a definite path is a walk over its keys."""
    for key in keys:
        if isinstance(key, str):
            if not isinstance(node, dict):
                return None
            node = node.get(key, _MISSING)
            if node is _MISSING:
                return None
        else:
            if not isinstance(node, list):
                return None
            index = key + len(node) if key < 0 else key
            if not 0 <= index < len(node):
                return None
            node = node[index]
    return node


def _read_matches(path: jsonpath.JSONPath, document: Any) -> list[Any] | None:
    """The matches of an indefinite path; ``None`` when evaluating it fails, as Conductor
    reads a path Jayway throws on (a document nested deeper than the recursion limit)."""
    if not isinstance(document, dict | list):
        return []  # python-jsonpath would parse a string document as JSON text
    try:
        return path.findall(document)
    except (jsonpath.JSONPathError, RecursionError, TypeError, ValueError):
        return None


def _merged_names(segments: tuple[object, ...]) -> tuple[str, ...] | None:
    """The names of a last ``['a','b']`` segment, which Jayway merges into one object."""
    if not segments:
        return None
    last = segments[-1]
    if not isinstance(last, JSONPathChildSegment) or len(last.selectors) < 2:
        return None
    if not all(isinstance(selector, NameSelector) for selector in last.selectors):
        return None
    return tuple(selector.name for selector in last.selectors if isinstance(selector, NameSelector))


def _merge(names: tuple[str, ...], node: Any) -> dict[str, Any] | None:
    if not isinstance(node, dict):
        return None
    return {name: node[name] for name in names if name in node}


def _read_merged(
    prefix: Callable[[Any], Any], definite: bool, names: tuple[str, ...], document: Any
) -> Any:
    found = prefix(document)
    if definite:
        return _merge(names, found)
    if found is None:
        return None
    return [merged for node in found if (merged := _merge(names, node)) is not None]


def _apply_to_value(read: Callable[[Any], Any], function: Callable[[Any], Any], doc: Any) -> Any:
    value = read(doc)
    return None if value is None else call(function, value)


def _apply_to_all(read: Callable[[Any], Any], function: Callable[[Any], Any], doc: Any) -> Any:
    """``$..book.length()``: Jayway turns this into ``length($..book)``."""
    matches = read(doc)
    if matches is None:
        return None
    if function is length:  # Jayway counts the children of every match
        return sum(len(m) for m in matches if isinstance(m, list | dict))
    return call(function, matches)


def _apply_to_each(read: Callable[[Any], Any], function: Callable[[Any], Any], doc: Any) -> Any:
    matches = read(doc)
    if matches is None:
        return None
    results = [call(function, match, _MISSING) for match in matches]
    return None if any(result is _MISSING for result in results) else results


# -- errors --------------------------------------------------------------------------------

_FUNCTIONS_WITH_ARGUMENTS = ("concat", "append", "index")
_TRAILING_CALL = re.compile(r"\.\s*([A-Za-z_]\w*)\s*\(([^()]*)\)\s*$")


def _function_named(name: str, arguments: str, expression: str) -> Callable[[Any], Any]:
    if name in FUNCTIONS and not arguments.strip():
        return FUNCTIONS[name]
    if name in _FUNCTIONS_WITH_ARGUMENTS or name in FUNCTIONS:
        raise JsonPathError(f"{name}(...) is not supported in {expression!r}")
    raise JsonPathError(
        f"unknown function {name}() in {expression!r} (known: {', '.join(FUNCTIONS)})"
    )


def _describe(exc: jsonpath.JSONPathError, expression: str, added: int) -> str:
    """One line naming what is wrong and where, counted in the path as written."""
    message = str(exc.message if exc.message is not None else exc)
    token = exc.token
    if token is None:
        return f"{message} in {expression!r}"
    if token.kind == TOKEN_EOF:
        return f"{message} at the end of {expression.strip()!r}"
    position = max(token.index - added, 0) + 1
    return f"{message} at character {position} of {expression.strip()!r}"
