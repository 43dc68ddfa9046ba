"""The loaded configuration and its problems."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from conductor_events.config.masking import masked_repr, shown_secret
from conductor_events.config.properties import DEFAULT, Source
from conductor_events.config.settings import (
    DefaultEventQueueSettings,
    QueueSettings,
    SectionSettings,
)
from conductor_events.errors import ConfigError

S = TypeVar("S", bound=SectionSettings)

QUEUES_PREFIX = "conductor.event-queues"


def _section_depth(key: str) -> int:
    """Dotted parts of the section prefix of ``key``: 3 for ``conductor.event-queues.<type>``,
    2 for the core's (``conductor.server``). A missing key is located by a set key of its own
    section, never by an unrelated one."""
    return 3 if key.startswith(f"{QUEUES_PREFIX}.") else 2


def source_order(source: Source, files: tuple[str, ...]) -> tuple[int, int]:
    """Sort key of a source in reading order: file by file, line by line, then environment
    variables, then defaults."""
    if source.env is not None:
        return (len(files), 0)
    if source.file is None:
        return (len(files) + 1, 0)
    index = files.index(source.file) if source.file in files else len(files)
    return (index, source.line or 0)


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with the configuration, formatted as
    ``FILE:LINE: KEY: message (plugin DISTRIBUTION VERSION)``.

    ``lenient`` problems (an unknown key, a section for a type that is not installed) are
    errors in ``config check`` and warnings at start-up.
    """

    key: str
    message: str
    source: Source | None = None
    plugin: str | None = None
    lenient: bool = False

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source is not None and self.source != DEFAULT else ""
        owner = f" (plugin {self.plugin})" if self.plugin else ""
        return f"{where}{self.key}: {self.message}{owner}"


@dataclass(frozen=True, slots=True, repr=False)
class Entry:
    """One effective property: canonical key, the value as written, and where it came from."""

    key: str
    value: str
    source: Source
    secret: bool = False

    @property
    def display_value(self) -> str:
        """The value as ``config show`` and errors may print it: a secret is masked, or
        ``(not set)`` when it has no value."""
        return shown_secret(self.value) if self.secret else self.value

    def __repr__(self) -> str:
        return (
            f"Entry(key={self.key!r}, value={self.display_value!r}, source={str(self.source)!r}"
            f", secret={self.secret!r})"
        )


@dataclass(repr=False)
class Configuration:
    """The effective configuration: raw entries, validated sections, and every problem found."""

    entries: dict[str, Entry]
    default_queue: DefaultEventQueueSettings
    queues: dict[str, QueueSettings]
    problems: list[ConfigProblem] = field(default_factory=list)
    files: tuple[str, ...] = ()
    sections: dict[str, SectionSettings] = field(default_factory=dict)
    """The core's other sections (``conductor.server``, ``conductor.event-handlers``) that
    validated, by prefix."""
    _reporting_plugin: str | None = None

    def __repr__(self) -> str:
        """Every part, secrets masked: plugin traces and debug logs print configurations."""
        values = {key: entry.display_value for key, entry in self.entries.items()}
        return (
            f"Configuration(files={self.files!r}, entries={values!r}, "
            f"default_queue={masked_repr(self.default_queue)}, queues={masked_repr(self.queues)}, "
            f"sections={masked_repr(self.sections)}, problems={[str(p) for p in self.problems]!r})"
        )

    @property
    def errors(self) -> list[ConfigProblem]:
        """Problems that stop a start-up."""
        return [p for p in self.problems if not p.lenient]

    @property
    def warnings(self) -> list[ConfigProblem]:
        """Problems that a start-up logs and goes past."""
        return [p for p in self.problems if p.lenient]

    def raise_for_errors(self) -> None:
        """Raise :class:`ConfigError` listing every start-up-stopping problem."""
        if self.errors:
            raise ConfigError([str(p) for p in self.errors])

    def settings(self, type_name: str) -> QueueSettings | None:
        """The validated settings of a queue type, or ``None`` when its section is invalid."""
        return self.queues.get(type_name)

    def section(self, model: type[S]) -> S:
        """A core section's validated settings; its defaults when it is unset or invalid."""
        found = self.sections.get(model.section)
        return found if isinstance(found, model) else model()

    def enabled(self, type_name: str) -> bool:
        settings = self.queues.get(type_name)
        return settings is not None and settings.enabled

    def source_of(self, key: str) -> Source | None:
        entry = self.entries.get(key)
        return entry.source if entry is not None else None

    def related_source(self, key: str) -> Source | None:
        """Where ``key`` was set; for a key that is missing altogether, where the nearest key
        that is set was (the one sharing the longest prefix, the earliest of equals), so a
        problem about a missing key still points into the file. ``None`` when no key of its
        section is set."""
        found = self.source_of(key)
        if found is not None:
            return found
        parts = key.split(".")
        for size in range(len(parts) - 1, _section_depth(key) - 1, -1):
            prefix = ".".join(parts[:size]) + "."
            near = [entry for name, entry in self.entries.items() if name.startswith(prefix)]
            if near:
                return min(near, key=lambda entry: source_order(entry.source, self.files)).source
        return None

    def problem(self, key: str, message: str) -> ConfigProblem:
        """A problem with ``key``, located (see :meth:`related_source`) and attributed to the
        plugin being asked."""
        return ConfigProblem(key, message, self.related_source(key), self._reporting_plugin)

    @contextlib.contextmanager
    def reporting_as(self, plugin: str) -> Iterator[None]:
        """Attribute problems made with :meth:`problem` to ``plugin`` while it validates."""
        previous, self._reporting_plugin = self._reporting_plugin, plugin
        try:
            yield
        finally:
            self._reporting_plugin = previous

    def as_mapping(self) -> Mapping[str, Entry]:
        return self.entries
