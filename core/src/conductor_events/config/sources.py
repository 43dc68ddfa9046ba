"""The pydantic-settings sources of a section: properties files and Spring environment variables.

Each source only hands pydantic-settings the values it read, as the nested dict a model takes;
pydantic-settings merges them in the one priority order of
:meth:`~conductor_events.config.settings.SectionSettings.settings_customise_sources` and
validates. Which property key names which field (relaxed binding, maps, nested models) is
:mod:`conductor_events.config.binding`'s work; a source keeps, next to each value, the
:class:`~conductor_events.config.model.Entry` it came from (key, ``FILE:LINE`` or ``env NAME``),
so that a validation error names the line it is about.

The sources of a section are active only while :func:`reading` says so, which the loader does
around building the section: settings built anywhere else (tests, an application constructing
``SqsSettings(batch_size=5)``) take their init arguments and defaults, and never read a user's
files or environment.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from conductor_events.config.binding import Loc, set_in

if TYPE_CHECKING:
    from conductor_events.config.model import Entry


class _Masked(str):
    """A secret's text whose ``repr`` is masked, as handed to pydantic-settings: its debug log
    (``PYDANTIC_SETTINGS_DEBUG``) prints each source's values. Validation turns it back into a
    plain ``str`` or ``SecretStr``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'******'"


class BoundSource(PydanticBaseSettingsSource):
    """Values already bound to a model's fields, each at its loc, handed over as one dict."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        origins: Mapping[Loc, Entry],
        set_aside: Collection[Loc] = (),
    ) -> None:
        super().__init__(settings_cls)
        self.origins = origins
        """Where each value came from, by loc."""
        self.set_aside = set_aside
        """Locs left out: a value that failed validation, so the rest of the section is still
        checked (see :mod:`conductor_events.config.sections`)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: the values are bound as a whole by :meth:`__call__`."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for loc, entry in self.origins.items():
            if not is_set_aside(loc, self.set_aside):
                set_in(data, loc, _Masked(entry.value) if entry.secret else entry.value)
        return data


class PropertiesFileSource(BoundSource):
    """A section's properties from the files, in reading order: a later line or file wins."""


class SpringEnvironmentSource(BoundSource):
    """A section's Spring-form environment variables (``CONDUCTOR_EVENTQUEUES_SQS_BATCHSIZE``)."""


def is_set_aside(loc: Loc, set_aside: Collection[Loc]) -> bool:
    """Whether ``loc`` or a part containing it is set aside."""
    return any(loc[:size] in set_aside for size in range(1, len(loc) + 1))


@dataclass(frozen=True)
class SectionSources:
    """The sources of one section while it is being built."""

    environment: SpringEnvironmentSource
    files: PropertiesFileSource


_reading: ContextVar[tuple[type[BaseSettings], SectionSources] | None] = ContextVar(
    "conductor_events_section_sources", default=None
)


@contextlib.contextmanager
def reading(settings_cls: type[BaseSettings], sources: SectionSources) -> Iterator[None]:
    """Make ``sources`` the ones ``settings_cls`` is built from, for the duration."""
    token = _reading.set((settings_cls, sources))
    try:
        yield
    finally:
        _reading.reset(token)


def sources_for(settings_cls: type[BaseSettings]) -> SectionSources | None:
    """The sources ``settings_cls`` is being built from, or ``None`` outside the loader."""
    active = _reading.get()
    return active[1] if active is not None and active[0] is settings_cls else None
