"""Spring-style durations: ``100ms``, ``60s``, ``5m``, ``PT1M``, or a bare number in a key's unit.

Use :data:`Millis` or :data:`Seconds` as a settings field type; the unit is the one a bare
number is read in, as each key documents. :data:`PositiveMillis` and :data:`PositiveSeconds`
also refuse zero, for timeouts and pauses where zero would mean "never wait" or a busy loop.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, PlainSerializer

_UNITS = {
    "ns": timedelta(microseconds=0.001),
    "us": timedelta(microseconds=1),
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
}
_SIMPLE = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_ISO = re.compile(
    r"^\s*P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?"
    r"(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?\s*$",
    re.IGNORECASE,
)


def parse_duration(value: object, unit: str = "ms") -> timedelta:
    """Parse a duration; a bare number is in ``unit``. Negative durations are refused."""
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        result = _UNITS[unit] * value
    elif isinstance(value, str):
        result = _parse_text(value, unit)
    else:
        raise ValueError(f"expected a duration such as 100ms, 60s or 5m, got {value!r}")
    if result < timedelta(0):
        raise ValueError(f"duration {value!r} must not be negative")
    return result


def _parse_text(text: str, unit: str) -> timedelta:
    match = _SIMPLE.match(text)
    if match:
        number, suffix = match.groups()
        factor = _UNITS.get(suffix.lower() if suffix else unit)
        if factor is None:
            raise ValueError(
                f"unknown duration unit {suffix!r} in {text!r} (use ns, us, ms, s, m, h or d)"
            )
        return factor * float(number)
    iso = _ISO.match(text)
    if iso and any(iso.groups()):
        parts = {k: float(v) for k, v in iso.groupdict().items() if v}
        return timedelta(
            days=parts.get("d", 0),
            hours=parts.get("h", 0),
            minutes=parts.get("m", 0),
            seconds=parts.get("s", 0),
        )
    raise ValueError(f"invalid duration {text!r} (expected e.g. 100ms, 60s, 5m or PT1M)")


def format_duration(value: timedelta) -> str:
    """The shortest Spring-style spelling of a duration: ``100ms``, ``60s``, ``5m``."""
    ms = round(value.total_seconds() * 1000)
    for suffix, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms and ms % size == 0:
            return f"{ms // size}{suffix}"
    return f"{ms}ms"


def _duration(unit: str) -> object:
    return BeforeValidator(lambda value: parse_duration(value, unit))


_serialize = PlainSerializer(format_duration, return_type=str)

Millis = Annotated[timedelta, _duration("ms"), _serialize]
"""A duration whose bare numbers are milliseconds."""

Seconds = Annotated[timedelta, _duration("s"), _serialize]
"""A duration whose bare numbers are seconds."""


def _more_than_zero(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be more than 0")
    return value


_positive = AfterValidator(_more_than_zero)

PositiveMillis = Annotated[timedelta, _duration("ms"), _positive, _serialize]
"""A duration of more than zero whose bare numbers are milliseconds."""

PositiveSeconds = Annotated[timedelta, _duration("s"), _positive, _serialize]
"""A duration of more than zero whose bare numbers are seconds."""
