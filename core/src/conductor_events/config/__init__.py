"""Configuration: Conductor's Spring-style properties, bound to pydantic-settings models."""

from conductor_events.config.durations import (
    Millis,
    PositiveMillis,
    PositiveSeconds,
    Seconds,
    format_duration,
    parse_duration,
)
from conductor_events.config.loader import (
    CONFIG_ENV,
    config_files_from_env,
    load_configuration,
)
from conductor_events.config.model import ConfigProblem, Configuration, Entry
from conductor_events.config.properties import Source
from conductor_events.config.settings import (
    DefaultEventQueueSettings,
    QueueSettings,
    SectionSettings,
)

__all__ = [
    "CONFIG_ENV",
    "ConfigProblem",
    "Configuration",
    "DefaultEventQueueSettings",
    "Entry",
    "Millis",
    "PositiveMillis",
    "PositiveSeconds",
    "QueueSettings",
    "Seconds",
    "SectionSettings",
    "Source",
    "config_files_from_env",
    "format_duration",
    "load_configuration",
    "parse_duration",
]
