"""The loaded configuration and its problems."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from conductor_events.config.properties import DEFAULT, Source
from conductor_events.config.settings import (
    DefaultEventQueueSettings,
    QueueSettings,
    SectionSettings,
)
from conductor_events.errors import ConfigError

S = TypeVar("S", bound=SectionSettings)


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with the configuration, formatted as ``FILE:LINE: KEY: message``.

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


@dataclass(frozen=True, slots=True)
class Entry:
    """One effective property: canonical key, the value as written, and where it came from."""

    key: str
    value: str
    source: Source
    secret: bool = False

    @property
    def display_value(self) -> str:
        return "******" if self.secret else self.value


@dataclass
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

    def problem(self, key: str, message: str) -> ConfigProblem:
        """A problem with ``key``, located and attributed to the plugin being asked."""
        return ConfigProblem(key, message, self.source_of(key), self._reporting_plugin)

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
