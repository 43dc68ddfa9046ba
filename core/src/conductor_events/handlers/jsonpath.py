"""JSONPath as Jayway JsonPath reads it with ``SUPPRESS_EXCEPTIONS`` (what Conductor uses).

Supported: the root ``$`` (and paths written without it: ``orderId`` is ``$.orderId``), dot
and bracket names (``a.b``, ``['a b']``, ``['a','b']``), indexes (``[0]``, ``[-1]``,
``[0,2]``), slices (``[1:3]``, ``[:2]``, ``[-2:]``), wildcards (``*``, ``[*]``), deep scan
(``..name``), filters (``[?(@.price < 10 && @.tag == 'x')]`` with ``== != < <= > >= =~ in
nin subsetof anyof noneof size empty`` and ``! && ||``), and the functions ``length()``,
``size()``, ``min()``, ``max()``, ``avg()``, ``sum()``, ``first()``, ``last()`` and
``keys()`` at the end of a path.

Results follow Jayway: a *definite* path (names and single indexes only) gives the value, or
``None`` when any part is missing; an *indefinite* path gives the list of matches, empty when
none. Anything else (unbalanced brackets, an unknown function) is a :class:`JsonPathError`
when the path is compiled, that is, when a handler is loaded, never while a message is
processed.

Compiled paths are cached; a definite path reads as a walk over a tuple of keys.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

_MISSING: Any = object()


class JsonPathError(ValueError):
    """A path that cannot be compiled."""


@dataclass(frozen=True, slots=True)
class JsonPath:
    """A compiled path; :meth:`read` evaluates it against a document."""

    text: str
    definite: bool
    _read: Callable[[Any, Any], Any]

    def read(self, document: Any) -> Any:
        """The value at this path (definite), or the list of matches (indefinite)."""
        return self._read(document, document)


@functools.lru_cache(maxsize=4096)
def compile_path(expression: str) -> JsonPath:
    """Compile a JSONPath expression as Jayway does, prefixing ``$.`` when the root is left out.

    Raises:
        JsonPathError: the expression is not a path this module reads.
    """
    text = expression.strip()
    if not text:
        raise JsonPathError("empty path")
    if text[0] not in "$@":
        text = "$" + text if text[0] == "[" else "$." + text
    segments, function = _Parser(text).parse_path()
    return _build(expression, segments, function)


# -- segments ------------------------------------------------------------------------------


Nodes = list[Any]


@dataclass(frozen=True, slots=True)
class _Name:
    name: str


@dataclass(frozen=True, slots=True)
class _Names:
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Index:
    index: int


@dataclass(frozen=True, slots=True)
class _Indexes:
    indexes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _Slice:
    start: int | None
    end: int | None


@dataclass(frozen=True, slots=True)
class _Wildcard:
    pass


@dataclass(frozen=True, slots=True)
class _DeepScan:
    inner: Segment


@dataclass(frozen=True, slots=True)
class _Filter:
    predicate: Predicate


Segment = _Name | _Names | _Index | _Indexes | _Slice | _Wildcard | _DeepScan | _Filter
Predicate = Callable[[Any, Any], bool]
"""Called with the candidate node (``@``) and the document root (``$``)."""


def _is_definite(segment: Segment) -> bool:
    return isinstance(segment, _Name | _Index)


def _children(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        yield from node.values()
    elif isinstance(node, list):
        yield from node


def _descendants(node: Any) -> Iterator[Any]:
    """The node and everything under it, depth first (Jayway's deep-scan order)."""
    yield node
    for child in _children(node):
        yield from _descendants(child)


def _apply(segment: Segment, node: Any, root: Any) -> Iterator[Any]:
    """The matches of one segment applied to one node, in an indefinite context."""
    if isinstance(segment, _Name):
        if isinstance(node, dict) and segment.name in node:
            yield node[segment.name]
    elif isinstance(segment, _Index):
        if isinstance(node, list):
            index = segment.index + len(node) if segment.index < 0 else segment.index
            if 0 <= index < len(node):
                yield node[index]
    elif isinstance(segment, _Names):
        if isinstance(node, dict):
            found = {name: node[name] for name in segment.names if name in node}
            if found:
                yield found
    elif isinstance(segment, _Indexes):
        if isinstance(node, list):
            for raw in segment.indexes:
                index = raw + len(node) if raw < 0 else raw
                if 0 <= index < len(node):
                    yield node[index]
    elif isinstance(segment, _Slice):
        if isinstance(node, list):
            yield from node[slice(segment.start, segment.end)]
    elif isinstance(segment, _Wildcard):
        yield from _children(node)
    elif isinstance(segment, _DeepScan):
        for descendant in _descendants(node):
            if isinstance(segment.inner, _Wildcard):
                if descendant is not node:
                    yield descendant
            else:
                yield from _apply(segment.inner, descendant, root)
    else:
        if isinstance(node, list):
            yield from (item for item in node if segment.predicate(item, root))
        elif isinstance(node, dict) and segment.predicate(node, root):
            yield node


def _build(text: str, segments: list[Segment], function: str | None) -> JsonPath:
    definite = all(_is_definite(s) for s in segments)
    read: Callable[[Any, Any], Any]
    if definite:
        keys = tuple(_key(s) for s in segments)
        read = functools.partial(_read_definite, keys)
    else:
        read = functools.partial(_read_indefinite, tuple(segments))
    if function is not None:
        read = functools.partial(_with_function, read, _FUNCTIONS[function])
        definite = True
    return JsonPath(text, definite, read)


def _key(segment: Segment) -> str | int:
    if isinstance(segment, _Name):
        return segment.name
    assert isinstance(segment, _Index)
    return segment.index


def _read_definite(keys: tuple[str | int, ...], node: Any, root: Any) -> Any:
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


def _read_indefinite(segments: tuple[Segment, ...], node: Any, root: Any) -> list[Any]:
    nodes: Nodes = [node]
    for segment in segments:
        nodes = [match for current in nodes for match in _apply(segment, current, root)]
        if not nodes:
            break
    return nodes


def _exists(segments: tuple[Segment, ...], node: Any, root: Any) -> Any:
    """The value at a path, or ``_MISSING`` (filters tell a null from an absent property)."""
    nodes: Nodes = [node]
    for segment in segments:
        nodes = [match for current in nodes for match in _apply(segment, current, root)]
        if not nodes:
            return _MISSING
    if all(_is_definite(s) for s in segments):
        return nodes[0]
    return nodes


def _with_function(
    read: Callable[[Any, Any], Any], fn: Callable[[Any], Any], node: Any, root: Any
) -> Any:
    value = read(node, root)
    if value is None:
        return None
    try:
        return fn(value)
    except (TypeError, ValueError, IndexError):
        return None


def _numbers(value: Any) -> list[float]:
    if not isinstance(value, list):
        raise TypeError("not a list")
    numbers = [v for v in value if isinstance(v, int | float) and not isinstance(v, bool)]
    if not numbers:
        raise ValueError("no numbers")
    return numbers


def _length(value: Any) -> int | None:
    return len(value) if isinstance(value, list | dict | str) else None


def _avg(value: Any) -> float:
    numbers = _numbers(value)
    return sum(numbers) / len(numbers)


_FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "length": _length,
    "size": _length,
    "min": lambda v: float(min(_numbers(v))),
    "max": lambda v: float(max(_numbers(v))),
    "avg": _avg,
    "sum": lambda v: float(math.fsum(_numbers(v))),
    "first": lambda v: v[0] if isinstance(v, list) and v else None,
    "last": lambda v: v[-1] if isinstance(v, list) and v else None,
    "keys": lambda v: list(v) if isinstance(v, dict) else None,
}


# -- parsing -------------------------------------------------------------------------------

_NAME_CHARS = re.compile(r"[^.\[\]()\s=!<>&|,'\"~]+")
_INT = re.compile(r"\s*(-?\d+)\s*")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_OPERATORS = ("==", "!=", "<=", ">=", "=~", "<", ">")
_WORD_OPERATORS = ("nin", "in", "subsetof", "anyof", "noneof", "size", "empty")


class _Parser:
    """Recursive descent over a path that starts with ``$`` or ``@``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, message: str) -> JsonPathError:
        return JsonPathError(f"{message} at position {self.pos} of {self.text!r}")

    def peek(self, token: str) -> bool:
        return self.text.startswith(token, self.pos)

    def parse_path(self) -> tuple[list[Segment], str | None]:
        self.pos = 1  # past $ or @
        segments, function = self.segments(stop_at_operator=False)
        if self.pos != len(self.text):
            raise self.error(f"unexpected {self.text[self.pos]!r}")
        return segments, function

    def segments(self, *, stop_at_operator: bool) -> tuple[list[Segment], str | None]:
        segments: list[Segment] = []
        while self.pos < len(self.text):
            if self.peek(".."):
                self.pos += 2
                if self.peek("["):
                    segments.append(_DeepScan(self.bracket()))
                else:
                    segments.append(_DeepScan(self.dot_name()))
            elif self.peek("."):
                self.pos += 1
                name_start = self.pos
                segment = self.dot_name()
                if self.peek("()") and isinstance(segment, _Name):
                    if segment.name not in _FUNCTIONS:
                        self.pos = name_start
                        raise self.error(f"unknown function {segment.name}()")
                    self.pos += 2
                    if self.pos < len(self.text) and not (stop_at_operator and self._at_boundary()):
                        raise self.error("a function must end the path")
                    return segments, segment.name
                segments.append(segment)
            elif self.peek("["):
                segments.append(self.bracket())
            elif stop_at_operator and self._at_boundary():
                break
            else:
                raise self.error(f"unexpected {self.text[self.pos]!r}")
        return segments, None

    def _at_boundary(self) -> bool:
        return self.text[self.pos] in " \t)=!<>&|,"

    def dot_name(self) -> Segment:
        if self.peek("*"):
            self.pos += 1
            return _Wildcard()
        match = _NAME_CHARS.match(self.text, self.pos)
        if not match:
            raise self.error("expected a property name")
        self.pos = match.end()
        return _Name(match.group())

    def bracket(self) -> Segment:
        self.pos += 1  # [
        self.skip_ws()
        if self.peek("*"):
            self.pos += 1
            segment: Segment = _Wildcard()
        elif self.peek("?"):
            self.pos += 1
            self.skip_ws()
            if not self.peek("("):
                raise self.error("expected ( after ?")
            self.pos += 1
            predicate = _FilterParser(self).expression()
            self.skip_ws()
            if not self.peek(")"):
                raise self.error("expected ) to close the filter")
            self.pos += 1
            segment = _Filter(predicate)
        elif self.peek("'") or self.peek('"'):
            names = [self.quoted()]
            self.skip_ws()
            while self.peek(","):
                self.pos += 1
                self.skip_ws()
                names.append(self.quoted())
                self.skip_ws()
            segment = _Name(names[0]) if len(names) == 1 else _Names(tuple(names))
        else:
            segment = self.indexes()
        self.skip_ws()
        if not self.peek("]"):
            raise self.error("expected ]")
        self.pos += 1
        return segment

    def indexes(self) -> Segment:
        end = self.text.find("]", self.pos)
        if end < 0:
            raise self.error("expected ]")
        body = self.text[self.pos : end]
        if ":" in body:
            parts = body.split(":")
            if len(parts) != 2:
                raise self.error("a slice has one colon")
            try:
                start, stop = (int(p) if p.strip() else None for p in parts)
            except ValueError:
                raise self.error(f"invalid slice [{body}]") from None
            self.pos = end
            return _Slice(start, stop)
        items = body.split(",")
        values = []
        for item in items:
            match = _INT.fullmatch(item)
            if not match:
                raise self.error(f"invalid index [{body}]")
            values.append(int(match.group(1)))
        self.pos = end
        return _Index(values[0]) if len(values) == 1 else _Indexes(tuple(values))

    def quoted(self) -> str:
        quote = self.text[self.pos]
        if quote not in "'\"":
            raise self.error("expected a quoted name")
        self.pos += 1
        out = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\" and self.pos + 1 < len(self.text):
                out.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if char == quote:
                self.pos += 1
                return "".join(out)
            out.append(char)
            self.pos += 1
        raise self.error("unterminated quoted name")

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1


Operand = Callable[[Any, Any], Any]
"""Evaluates to a value, or ``_MISSING`` for a path that matched nothing."""


class _FilterParser:
    """The predicate inside ``[?( ... )]``: ``||`` over ``&&`` over ``!`` over comparisons."""

    def __init__(self, parser: _Parser) -> None:
        self.p = parser

    def expression(self) -> Predicate:
        left = self.conjunction()
        self.p.skip_ws()
        while self.p.peek("||"):
            self.p.pos += 2
            right = self.conjunction()
            left = _or(left, right)
            self.p.skip_ws()
        return left

    def conjunction(self) -> Predicate:
        left = self.negation()
        self.p.skip_ws()
        while self.p.peek("&&"):
            self.p.pos += 2
            right = self.negation()
            left = _and(left, right)
            self.p.skip_ws()
        return left

    def negation(self) -> Predicate:
        self.p.skip_ws()
        if self.p.peek("!") and not self.p.peek("!="):
            self.p.pos += 1
            inner = self.negation()
            return lambda node, root: not inner(node, root)
        if self.p.peek("("):
            self.p.pos += 1
            inner = self.expression()
            self.p.skip_ws()
            if not self.p.peek(")"):
                raise self.p.error("expected )")
            self.p.pos += 1
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        left = self.operand()
        self.p.skip_ws()
        for op in _OPERATORS:
            if self.p.peek(op):
                self.p.pos += len(op)
                self.p.skip_ws()
                if op == "=~":
                    return _regex(left, self.regex())
                return _compare(op, left, self.operand())
        for word in _WORD_OPERATORS:
            if self.p.peek(word) and not self.p.text[self.p.pos + len(word) :][:1].isalnum():
                self.p.pos += len(word)
                self.p.skip_ws()
                return _compare(word, left, self.operand())
        return lambda node, root: _truthy_exists(left(node, root))

    def operand(self) -> Operand:
        p = self.p
        p.skip_ws()
        if p.pos >= len(p.text):
            raise p.error("expected a value")
        char = p.text[p.pos]
        if char in "@$":
            relative = char == "@"
            p.pos += 1
            segments, function = p.segments(stop_at_operator=True)
            path = _build(p.text, segments, function)
            if function is not None:
                return (lambda n, r: path.read(n)) if relative else (lambda n, r: path.read(r))
            seq = tuple(segments)
            if relative:
                return lambda node, root: _exists(seq, node, root)
            return lambda node, root: _exists(seq, root, root)
        if char in "'\"":
            text = p.quoted()
            return lambda node, root: text
        if char == "[":
            end = _matching_bracket(p.text, p.pos)
            if end < 0:
                raise p.error("unterminated list")
            raw = p.text[p.pos : end + 1]
            try:
                value = json.loads(raw.replace("'", '"'))
            except ValueError:
                raise p.error(f"invalid list {raw}") from None
            p.pos = end + 1
            return lambda node, root: value
        for word, literal in (("true", True), ("false", False), ("null", None)):
            if p.peek(word):
                p.pos += len(word)
                return _literal(literal)
        match = _NUMBER.match(p.text, p.pos)
        if match:
            p.pos = match.end()
            number: Any = (
                float(match.group()) if re.search(r"[.eE]", match.group()) else int(match.group())
            )
            return lambda node, root: number
        raise p.error(f"unexpected {char!r} in filter")

    def regex(self) -> re.Pattern[str]:
        p = self.p
        if not p.peek("/"):
            raise p.error("expected /regex/ after =~")
        end = p.pos + 1
        while end < len(p.text) and p.text[end] != "/":
            end += 2 if p.text[end] == "\\" else 1
        if end >= len(p.text):
            raise p.error("unterminated regex")
        pattern = p.text[p.pos + 1 : end]
        p.pos = end + 1
        flags = 0
        while p.pos < len(p.text) and p.text[p.pos] in "imsx":
            flags |= {"i": re.I, "m": re.M, "s": re.S, "x": re.X}[p.text[p.pos]]
            p.pos += 1
        try:
            return re.compile(pattern, flags)
        except re.error as exc:
            raise p.error(f"invalid regex: {exc}") from None


def _literal(value: Any) -> Operand:
    return lambda node, root: value


def _matching_bracket(text: str, start: int) -> int:
    depth = 0
    quote = ""
    for index in range(start, len(text)):
        char = text[index]
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth == 0:
                return index
    return -1


def _or(left: Predicate, right: Predicate) -> Predicate:
    return lambda node, root: left(node, root) or right(node, root)


def _and(left: Predicate, right: Predicate) -> Predicate:
    return lambda node, root: left(node, root) and right(node, root)


def _truthy_exists(value: Any) -> bool:
    """``[?(@.isbn)]``: true when the path matched something."""
    if value is _MISSING:
        return False
    return not (isinstance(value, list) and not value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: ``1 == 1.0``, but ``true != 1`` and ``"1" != 1``."""
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def _contains(items: Any, value: Any) -> bool:
    return isinstance(items, list) and any(json_equal(value, item) for item in items)


def _order(op: str, a: Any, b: Any) -> bool:
    if (_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str)):
        if op == "<":
            return bool(a < b)
        if op == "<=":
            return bool(a <= b)
        if op == ">":
            return bool(a > b)
        return bool(a >= b)
    return False


def _test(op: str, a: Any, b: Any) -> bool:
    if op == "==":
        return a is not _MISSING and json_equal(a, b)
    if op == "!=":
        return a is _MISSING or not json_equal(a, b)
    if a is _MISSING or b is _MISSING:
        return op == "nin"
    if op in ("<", "<=", ">", ">="):
        return _order(op, a, b)
    if op == "in":
        return _contains(b, a)
    if op == "nin":
        return not _contains(b, a)
    if op == "subsetof":
        return isinstance(a, list) and all(_contains(b, item) for item in a)
    if op == "anyof":
        return isinstance(a, list) and any(_contains(b, item) for item in a)
    if op == "noneof":
        return isinstance(a, list) and not any(_contains(b, item) for item in a)
    if op == "size":
        return isinstance(a, list | str | dict) and _is_number(b) and len(a) == b
    # empty
    is_empty = isinstance(a, list | str | dict) and len(a) == 0
    return is_empty if b is True else (not is_empty if b is False else False)


def _compare(op: str, left: Operand, right: Operand) -> Predicate:
    return lambda node, root: _test(op, left(node, root), right(node, root))


def _regex(left: Operand, pattern: re.Pattern[str]) -> Predicate:
    def matches(node: Any, root: Any) -> bool:
        value = left(node, root)
        return isinstance(value, str) and pattern.fullmatch(value) is not None

    return matches
