"""The effective configuration, key by key, for ``config show``: value and source of each.

Values are printed through :attr:`Entry.display_value`: a secret is ``******`` when it has a
value and ``(not set)`` when it has none.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from conductor_events.config.binding import known_keys
from conductor_events.config.durations import format_duration
from conductor_events.config.masking import MASK
from conductor_events.config.model import Configuration, Entry
from conductor_events.config.properties import DEFAULT
from conductor_events.config.settings import DefaultEventQueueSettings, SectionSettings

if TYPE_CHECKING:
    from conductor_events.plugins import PluginHost


def render_value(value: Any) -> str:
    """A default value as a properties file would spell it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(render_value(v) for v in value)
    return str(value)


SOURCE_COLUMN_CAP = 80
"""The source column starts after the longest ``key = value`` up to this width; a longer line
keeps the same two-space gap before its source instead of pushing every other line right."""


def show_lines(entries: list[Entry]) -> list[str]:
    """``key = value  # source`` lines, the sources aligned in one column and never touching a
    value, however long."""
    pairs = [(f"{entry.key} = {entry.display_value}", str(entry.source)) for entry in entries]
    column = min(max((len(text) for text, _ in pairs), default=0), SOURCE_COLUMN_CAP)
    return [f"{text.ljust(column)}  # {source}" for text, source in pairs]


def _defaults(prefix: str, model: type[SectionSettings]) -> list[Entry]:
    entries = []
    for suffix, shape in known_keys(model):
        if shape.kind != "scalar":
            continue
        node: Any = model
        for part in suffix.split(".")[:-1]:
            node = node.model_fields[part.replace("-", "_")].annotation
        field = node.model_fields[suffix.split(".")[-1].replace("-", "_")]
        default = None if field.is_required() else field.get_default(call_default_factory=True)
        entries.append(Entry(f"{prefix}.{suffix}", render_value(default), DEFAULT, shape.secret))
    return entries


def effective_entries(config: Configuration, plugins: PluginHost) -> list[Entry]:
    """Every known key (set or default) and every map entry that was set, sorted by key."""
    sections: list[tuple[str, type[SectionSettings]]] = [
        (DefaultEventQueueSettings.section, DefaultEventQueueSettings)
    ]
    sections += [(reg.prefix, reg.model) for reg in plugins.config_sections().values()]
    sections += list(
        {
            reg.queue_type.section: reg.queue_type.settings
            for reg in plugins.queue_types().values()
        }.items()
    )
    merged = {entry.key: entry for prefix, model in sections for entry in _defaults(prefix, model)}
    merged.update(config.entries)
    return sorted(merged.values(), key=lambda e: e.key)
