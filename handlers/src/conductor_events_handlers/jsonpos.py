"""JSON with positions: parse a document and remember where each value starts.

Handler files are small, so after :func:`json.loads` has accepted the text (and given its own
error, with line and column, when it does not), a second pass walks the text and records the
line and column of every value by its path (``("actions", 0, "complete_task")``). Validation
problems are then reported as ``FILE:LINE:COLUMN``.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass
from typing import Any

Path = tuple[str | int, ...]

_WS = re.compile(r"[ \t\n\r]*")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_LITERALS = ("true", "false", "null", "NaN", "Infinity", "-Infinity")


@dataclass(frozen=True, slots=True)
class Position:
    """1-based line and column."""

    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"


class JsonSyntaxError(ValueError):
    """The text is not JSON; ``position`` is where the parser stopped."""

    def __init__(self, message: str, position: Position) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed JSON document and the position of each value in it."""

    value: Any
    positions: dict[Path, Position]

    def position(self, path: Path) -> Position:
        """Where the value at ``path`` starts, or its nearest enclosing value that exists."""
        for size in range(len(path), -1, -1):
            found = self.positions.get(path[:size])
            if found is not None:
                return found
        return Position(1, 1)


def parse(text: str) -> Document:
    """Parse JSON text, keeping positions.

    Raises:
        JsonSyntaxError: the text is not JSON.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JsonSyntaxError(exc.msg, Position(exc.lineno, exc.colno)) from None
    return Document(value, _Scanner(text).scan())


def path_text(path: Path) -> str:
    """A path as a reader writes it: ``actions[0].complete_task.workflowId``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out or "(document)"


class _Scanner:
    """Walks text that :func:`json.loads` accepted, recording where each value starts."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.positions: dict[Path, Position] = {}

    def scan(self) -> dict[Path, Position]:
        self._value(self._skip(0), ())
        return self.positions

    def _skip(self, index: int) -> int:
        match = _WS.match(self.text, index)
        return match.end() if match else index

    def _at(self, index: int) -> Position:
        line = bisect.bisect_right(self.line_starts, index)
        return Position(line, index - self.line_starts[line - 1] + 1)

    def _value(self, index: int, path: Path) -> int:
        self.positions[path] = self._at(index)
        char = self.text[index]
        if char == "{":
            return self._object(index + 1, path)
        if char == "[":
            return self._array(index + 1, path)
        if char == '"':
            return self._string(index)[1]
        for literal in _LITERALS:
            if self.text.startswith(literal, index):
                return index + len(literal)
        match = _NUMBER.match(self.text, index)
        return match.end() if match else index + 1

    def _string(self, index: int) -> tuple[str, int]:
        """The string starting at ``index`` (its opening quote) and the index after it."""
        match = _STRING.match(self.text, index)
        if match is None:  # cannot happen: json.loads accepted the text
            raise JsonSyntaxError("unterminated string", self._at(index))
        return str(json.loads(match.group())), match.end()

    def _object(self, index: int, path: Path) -> int:
        index = self._skip(index)
        if self.text[index] == "}":
            return index + 1
        while True:
            key, index = self._string(index)
            index = self._skip(self._skip(index) + 1)  # past the colon
            index = self._skip(self._value(index, (*path, key)))
            if self.text[index] == "}":
                return index + 1
            index = self._skip(index + 1)  # past the comma

    def _array(self, index: int, path: Path) -> int:
        index = self._skip(index)
        if self.text[index] == "]":
            return index + 1
        position = 0
        while True:
            index = self._skip(self._value(index, (*path, position)))
            position += 1
            if self.text[index] == "]":
                return index + 1
            index = self._skip(index + 1)
