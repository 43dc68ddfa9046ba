"""Validating one bound section, reporting every problem in it with its own key and line.

pydantic reports every field error of a model at once, but stops before the checks that come
after: a model validator (``auth.key`` needs ``auth.secret``) does not run while a field is
invalid, and neither do the plugins' ``validate_config`` checks, which need a settings object.
So after the first round, the values that failed are set aside and the section is validated
again: what that finds is reported too, and the settings it yields (the invalid values at their
defaults) are what the plugins' checks look at.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from conductor_events.config.binding import Loc
from conductor_events.config.model import ConfigProblem, Entry, source_order
from conductor_events.config.settings import SectionSettings


@dataclass
class Section:
    """Values being bound into one settings model, remembering where each came from."""

    prefix: str
    model: type[SectionSettings]
    plugin: str
    data: dict[str, Any] = field(default_factory=dict)
    origins: dict[Loc, Entry] = field(default_factory=dict)

    def entry_at(self, loc: Loc) -> tuple[Loc, Entry] | None:
        """The property a validation error's ``loc`` points into, and that property's loc."""
        for size in range(len(loc), 0, -1):
            entry = self.origins.get(loc[:size])
            if entry is not None:
                return loc[:size], entry
        return None

    def entries_under(self, loc: Loc, data: dict[str, Any]) -> list[Entry]:
        """The properties set below ``loc`` (all of the section's for the empty loc) whose
        values are still in ``data``, not set aside."""
        return [
            entry
            for at, entry in self.origins.items()
            if at[: len(loc)] == loc and _lookup(data, at)
        ]

    def key_of(self, loc: Loc) -> str:
        """The property key of a loc that no property was bound to."""
        suffix = ".".join(part.replace("_", "-") for part in loc)
        return f"{self.prefix}.{suffix}" if suffix else self.prefix


@dataclass
class Validated:
    """The outcome of validating a section.

    ``settings`` is ``None`` when the section is invalid; ``checked`` is what the plugins'
    checks see: the settings, or for an invalid section the values that passed with the failed
    ones at their defaults (``None`` when even that does not validate).
    """

    settings: SectionSettings | None
    checked: SectionSettings | None
    problems: list[ConfigProblem]


_MAX_ROUNDS = 8
"""Validation rounds at most; each round sets aside at least one value, so few are needed."""


def validate_section(section: Section, files: tuple[str, ...]) -> Validated:
    """Validate ``section``, collecting every problem (see the module docstring)."""
    data = copy.deepcopy(section.data)
    problems: list[ConfigProblem] = []
    seen: set[tuple[str, str]] = set()
    for _ in range(_MAX_ROUNDS):
        try:
            settings = section.model.model_validate(data)
        except ValidationError as exc:
            set_aside = False
            for error in exc.errors(include_url=False, include_input=False):
                problem, loc = _problem(section, error, data, files)
                if (problem.key, problem.message) not in seen:
                    seen.add((problem.key, problem.message))
                    problems.append(problem)
                set_aside = _remove(data, loc) or set_aside
            if not set_aside:
                return Validated(None, None, problems)
            continue
        return Validated(None if problems else settings, settings, problems)
    return Validated(None, None, problems)


def _problem(
    section: Section, error: ErrorDetails, data: dict[str, Any], files: tuple[str, ...]
) -> tuple[ConfigProblem, Loc]:
    """The problem line of one pydantic error, and the loc of the value to set aside.

    An error on a value names that property. An error with no value of its own (a rule across
    keys, a required key that is missing) names the one property set below it, or else the
    section part it is about, located at the first property set there (or in the section), so
    every line points into a file.
    """
    loc = tuple(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    found = section.entry_at(loc)
    if found is not None:
        at, entry = found
        if not entry.secret:
            message = f"invalid value {entry.value!r}: {message}"
        return ConfigProblem(entry.key, message, entry.source, section.plugin), at
    under = section.entries_under(loc, data)
    key = under[0].key if len(under) == 1 else section.key_of(loc)
    near = under or section.entries_under((), data)
    source = min(near, key=lambda e: source_order(e.source, files)).source if near else None
    return ConfigProblem(key, message, source, section.plugin), loc


def _lookup(data: dict[str, Any], loc: Sequence[str]) -> bool:
    """Whether nested dicts hold a value at ``loc``."""
    node: Any = data
    for part in loc:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _remove(data: dict[str, Any], loc: Sequence[str]) -> bool:
    """Remove the value at ``loc`` from nested dicts; whether there was one."""
    if not loc:
        return False
    node: Any = data
    for part in loc[:-1]:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    if not isinstance(node, dict) or loc[-1] not in node:
        return False
    del node[loc[-1]]
    return True
