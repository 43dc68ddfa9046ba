"""Reading Java ``.properties`` files, keeping the file and line each entry came from.

The grammar (``=``, ``:`` or whitespace separators, ``#``/``!`` comments, line continuations,
``\\uXXXX`` escapes) is the ``javaproperties`` package's: a real parser, never a split on ``=``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import javaproperties

from conductor_events.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Source:
    """Where a value came from: ``FILE:LINE``, ``env NAME``, or ``default``."""

    file: str | None = None
    line: int | None = None
    env: str | None = None

    def __str__(self) -> str:
        if self.env is not None:
            return f"env {self.env}"
        if self.file is not None:
            return f"{self.file}:{self.line}" if self.line is not None else self.file
        return "default"


DEFAULT = Source()


@dataclass(frozen=True, slots=True)
class RawProperty:
    """One ``key=value`` as written, with its source."""

    key: str
    value: str
    source: Source


def parse_properties(text: str, file: str) -> list[RawProperty]:
    """Parse properties text; each entry records the line its key starts on."""
    entries: list[RawProperty] = []
    line = 1
    try:
        for element in javaproperties.parse(text):
            if isinstance(element, javaproperties.KeyValue):
                entries.append(RawProperty(element.key, element.value, Source(file, line)))
            line += element.source.count("\n")
    except (ValueError, javaproperties.InvalidUEscapeError) as exc:
        raise ConfigError([f"{file}:{line}: cannot parse properties: {exc}"]) from exc
    return entries


def read_properties_file(path: str | Path) -> list[RawProperty]:
    """Read one properties file (UTF-8, as Java 9+ reads them)."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{name}: configuration file not found"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    except OSError as exc:
        raise ConfigError([f"{name}: cannot read configuration file: {exc.strerror}"]) from None
    return parse_properties(text, name)
