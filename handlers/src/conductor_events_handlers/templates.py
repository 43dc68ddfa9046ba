"""``${...}`` substitution against a message payload, as Conductor's ``ParametersUtils.replace``.

A template is any JSON value; every string in it (in maps and lists, at any depth) is scanned
for ``${path}`` expressions, and each path is read with JSONPath (Jayway semantics, see
:mod:`~conductor_events_handlers.jsonpath`) against the payload root:

* a string that is exactly one expression keeps the value's JSON type:
  ``"${Message.metadata}"`` gives an object, ``"${count}"`` a number;
* otherwise the values are interpolated as text: ``"SQS-${MessageId}"``; ``null`` is written
  ``null``, objects and lists as compact JSON;
* a path that matches nothing gives ``null``; ``${}`` gives an empty string;
* ``$${`` is a literal ``${`` (no expression);
* expressions nest: ``${Message.${field}}`` reads ``field`` first;
* ``${workflow.secrets.NAME}`` is left as written, for the Conductor server to resolve.

Environment variables: Conductor resolves ``${NAME}`` from any JVM system property or OS
environment variable before it looks at the payload, so a handler can copy ``${AWS_SECRET_KEY}``
or ``${DB_PASSWORD}`` into a workflow's input, where anyone who can read workflows sees it.
Here ``${NAME}`` reads an environment variable only when the name is listed in
``conductor.event-handlers.allowed-env`` (empty by default), and then only when it is set;
every other path reads the payload.

Templates are compiled once, when a handler is loaded: a bad path or an unclosed ``${`` is a
:class:`TemplateError` then, naming every one in the value (not only the first), and
rendering is a walk over prepared closures.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from conductor_events_handlers.jsonpath import JsonPathError, compile_path

Render = Callable[[Any], Any]
"""Renders a compiled template against a payload."""

_SECRETS_PREFIX = "workflow.secrets."
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class TemplateError(ValueError):
    """A template that cannot be compiled: an unclosed ``${`` or an invalid path."""


@dataclass(frozen=True, slots=True)
class Template:
    """A compiled template; ``render(payload)`` gives the substituted value."""

    source: Any
    render: Render
    dynamic: bool
    """Whether rendering can give anything but ``source`` (it holds an expression)."""


def compile_template(value: Any, allowed_env: Collection[str] = ()) -> Template:
    """Compile a JSON value holding ``${...}`` expressions.

    Raises:
        TemplateError: strings in it have an unclosed ``${`` or an invalid JSONPath; the
            message names each of them, separated by ``; ``.
    """
    compiler = _Compiler(frozenset(allowed_env))
    render, dynamic = compiler.value(value, ())
    if compiler.errors:
        raise TemplateError("; ".join(compiler.errors))
    return Template(value, render, dynamic)


def to_text(value: Any) -> str:
    """How a value is written when it is interpolated into a string."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return _encode(value)
    return str(value)


def has_expression(text: str) -> bool:
    """Whether a string holds a ``${`` that is not escaped as ``$${``."""
    start = text.find("${")
    while start >= 0:
        if start == 0 or text[start - 1] != "$":
            return True
        start = text.find("${", start + 2)
    return False


class _Compiler:
    """Compiles a template, collecting every error rather than stopping at the first."""

    def __init__(self, allowed_env: frozenset[str]) -> None:
        self.allowed_env = allowed_env
        self.errors: list[str] = []

    def value(self, value: Any, where: tuple[str | int, ...]) -> tuple[Render, bool]:
        if isinstance(value, str):
            return self.string(value, where)
        if isinstance(value, Mapping):
            items = [(key, *self.value(item, (*where, key))) for key, item in value.items()]
            if not any(dynamic for _, _, dynamic in items):
                return _copy_constant(value), False
            pairs = [(key, render) for key, render, _ in items]
            return (lambda payload: {key: render(payload) for key, render in pairs}), True
        if isinstance(value, list):
            parts = [self.value(item, (*where, index)) for index, item in enumerate(value)]
            if not any(dynamic for _, dynamic in parts):
                return _copy_constant(value), False
            renders = [render for render, _ in parts]
            return (lambda payload: [render(payload) for render in renders]), True
        return (lambda payload: value), False

    def string(self, text: str, where: tuple[str | int, ...]) -> tuple[Render, bool]:
        if "${" not in text:
            return (lambda payload: text), False
        known = len(self.errors)
        parts = self.parts(text, nested=False)
        if len(self.errors) > known:
            location = "".join(f"[{p!r}]" for p in where)
            if location:
                self.errors[known:] = [f"{error} in {location}" for error in self.errors[known:]]
            return (lambda payload: text), False
        if len(parts) == 1 and not isinstance(parts[0], str):
            return parts[0], True
        if all(isinstance(part, str) for part in parts):
            constant = "".join(part for part in parts if isinstance(part, str))
            return _constant(constant), False
        return _concatenate(parts), True

    def parts(self, text: str, *, nested: bool) -> list[str | Render]:
        """Split a string into literal text and expression renderers; an error is recorded
        and the scan goes on with the next expression (after an unclosed one, there is
        none)."""
        parts: list[str | Render] = []
        literal: list[str] = []
        index = 0
        while True:
            start = text.find("${", index)
            if start < 0:
                literal.append(text[index:])
                break
            if start > 0 and text[start - 1] == "$":  # $${ is a literal ${
                literal.append(text[index : start - 1] + "${")
                index = start + 2
                continue
            literal.append(text[index:start])
            end = _closing_brace(text, start + 2)
            if end < 0:
                self.errors.append(
                    f"unclosed '${{' at character {start + 1} of {text!r} "
                    "(write $${ for a literal ${)"
                )
                break
            if "".join(literal):
                parts.append("".join(literal))
            literal = []
            try:
                parts.append(self.expression(text[start + 2 : end], text[start : end + 1], nested))
            except TemplateError as exc:
                self.errors.append(str(exc))
            index = end + 1
        tail = "".join(literal)
        if tail:
            parts.append(tail)
        return parts

    def expression(self, path: str, written: str, nested: bool) -> Render:
        if "${" in path:
            inner = _concatenate(self.parts(path, nested=True))
            return _dynamic_path(inner)
        if not path.strip():
            return lambda payload: ""
        if path.startswith(_SECRETS_PREFIX):
            return lambda payload: written
        name = path.strip()
        try:
            compiled = compile_path(path)
        except JsonPathError as exc:
            raise TemplateError(f"invalid path in {written}: {exc}") from None
        read = compiled.read
        if name in self.allowed_env:
            return _environment_or(name, read)
        return read


def _closing_brace(text: str, index: int) -> int:
    depth = 1
    while index < len(text):
        char = text[index]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return -1


def _constant(text: str) -> Render:
    return lambda payload: text


def _concatenate(parts: list[str | Render]) -> Render:
    renders = [_constant(part) if isinstance(part, str) else part for part in parts]
    return lambda payload: "".join([to_text(render(payload)) for render in renders])


def _dynamic_path(inner: Render) -> Render:
    """A path built at render time (``${a.${b}}``); an invalid one reads as null."""

    def render(payload: Any) -> Any:
        path = inner(payload)
        if not path.strip():
            return ""
        try:
            return compile_path(path).read(payload)
        except JsonPathError:
            return None

    return render


def _environment_or(name: str, read: Render) -> Render:
    def render(payload: Any) -> Any:
        value = os.environ.get(name)
        return value if value is not None else read(payload)

    return render


def _copy_constant(value: Any) -> Render:
    """A constant container, rebuilt on each render so no caller shares it."""
    text = _encode(value)
    decode = json.JSONDecoder().decode
    return lambda payload: decode(text)
