"""Validating one bound section, reporting every problem in it with its own key and line.

pydantic reports every field error of a model at once, but stops before the checks that come
after: a model validator (``auth.key`` needs ``auth.secret``) does not run while a field is
invalid, and neither do the plugins' ``validate_config`` checks, which need a settings object.
So after the first round, the values that failed are set aside (left out by the sources) and
the section is built again: what that finds is reported too, and the settings it yields (the
invalid values at their defaults) are what the plugins' checks look at.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from conductor_events.config.binding import Loc
from conductor_events.config.model import ConfigProblem, Entry, source_order
from conductor_events.config.settings import SectionSettings
from conductor_events.config.sources import (
    PropertiesFileSource,
    SectionSources,
    SpringEnvironmentSource,
    is_set_aside,
    reading,
)


@dataclass
class Section:
    """One settings model and the values bound for it, by source, each with its origin."""

    prefix: str
    model: type[SectionSettings]
    plugin: str
    files: dict[Loc, Entry] = field(default_factory=dict)
    """From the properties files, a later line or file overwriting."""
    environment: dict[Loc, Entry] = field(default_factory=dict)
    """From Spring-form environment variables."""

    @property
    def origins(self) -> dict[Loc, Entry]:
        """The effective value of each loc: an environment variable over a file."""
        return {**self.files, **self.environment}

    def build(self, set_aside: Collection[Loc] = ()) -> SectionSettings:
        """The settings, through pydantic-settings, leaving out the values at ``set_aside``."""
        sources = SectionSources(
            SpringEnvironmentSource(self.model, self.environment, set_aside),
            PropertiesFileSource(self.model, self.files, set_aside),
        )
        with reading(self.model, sources):
            return self.model()

    def entry_at(self, loc: Loc) -> tuple[Loc, Entry] | None:
        """The property a validation error's ``loc`` points into, and that property's loc."""
        origins = self.origins
        for size in range(len(loc), 0, -1):
            entry = origins.get(loc[:size])
            if entry is not None:
                return loc[:size], entry
        return None

    def entries_under(self, loc: Loc, set_aside: Collection[Loc]) -> list[Entry]:
        """The properties set below ``loc`` (all of the section's for the empty loc) that are
        not set aside."""
        return [
            entry
            for at, entry in self.origins.items()
            if at[: len(loc)] == loc and not is_set_aside(at, set_aside)
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
    set_aside: set[Loc] = set()
    problems: list[ConfigProblem] = []
    seen: set[tuple[str, str]] = set()
    for _ in range(_MAX_ROUNDS):
        try:
            settings = section.build(set_aside)
        except ValidationError as exc:
            progressed = False
            for error in exc.errors(include_url=False, include_input=False):
                problem, loc = _problem(section, error, set_aside, files)
                if (problem.key, problem.message) not in seen:
                    seen.add((problem.key, problem.message))
                    problems.append(problem)
                if loc and section.entries_under(loc, set_aside):
                    set_aside.add(loc)
                    progressed = True
            if not progressed:
                return Validated(None, None, problems)
            continue
        return Validated(None if problems else settings, settings, problems)
    return Validated(None, None, problems)


def _problem(
    section: Section, error: ErrorDetails, set_aside: Collection[Loc], files: tuple[str, ...]
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
    under = section.entries_under(loc, set_aside)
    key = under[0].key if len(under) == 1 else section.key_of(loc)
    near = under or section.entries_under((), set_aside)
    source = min(near, key=lambda e: source_order(e.source, files)).source if near else None
    return ConfigProblem(key, message, source, section.plugin), loc
