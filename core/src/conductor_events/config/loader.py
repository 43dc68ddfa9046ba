"""Loading the configuration: properties files and Spring-form environment variables.

Each property of the files is routed to its section and bound to that section's model; each
section's environment variables are found by walking its known keys. pydantic-settings then
builds the section from those two sources, in the priority order of
:meth:`~conductor_events.config.settings.SectionSettings.settings_customise_sources`:
environment variables, later files, earlier files, defaults.

Each section this project or an installed plugin owns is checked strictly (plugins declare
theirs with the ``register_config_sections`` hook); other ``conductor.*`` keys (a Conductor
server's own, such as ``conductor.db.type``) and keys outside ``conductor.`` are ignored, so one
file can configure both.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from conductor_events import __version__
from conductor_events.config.binding import Loc, bind, env_name, known_keys, normalize
from conductor_events.config.model import (
    QUEUES_PREFIX,
    ConfigProblem,
    Configuration,
    Entry,
    source_order,
)
from conductor_events.config.properties import RawProperty, Source, read_properties_file
from conductor_events.config.sections import Section, Validated, validate_section
from conductor_events.config.settings import (
    DefaultEventQueueSettings,
    QueueSettings,
    SectionSettings,
)
from conductor_events.install_hints import install_hint, unloaded_type

if TYPE_CHECKING:
    from conductor_events.plugins import PluginHost

CORE_PLUGIN = f"conductor-events {__version__}"
"""How problems with the core's own keys name their owner: its distribution and version."""
__all__ = [
    "CONFIG_ENV",
    "CORE_PLUGIN",
    "QUEUES_PREFIX",
    "config_files_from_env",
    "load_configuration",
]
CONFIG_ENV = "CONDUCTOR_EVENTS_CONFIG"
"""Configuration files when no ``-c`` is given, separated by the OS path separator."""


def config_files_from_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """The files named by ``CONDUCTOR_EVENTS_CONFIG``."""
    value = (os.environ if environ is None else environ).get(CONFIG_ENV, "")
    return [part for part in value.split(os.pathsep) if part]


def load_configuration(
    files: Iterable[str | Path],
    plugins: PluginHost,
    environ: Mapping[str, str] | None = None,
) -> Configuration:
    """Read, bind and validate; every problem is collected, none raised (see ``raise_for_errors``).

    A file that cannot be read or parsed raises :class:`~conductor_events.errors.ConfigError`.
    """
    env = os.environ if environ is None else environ
    file_names = tuple(str(f) for f in files)
    raw: list[RawProperty] = [prop for name in file_names for prop in read_properties_file(name)]
    return _Loader(plugins).load(raw, env, file_names)


def spring_environment(
    prefix: str, model: type[SectionSettings], environ: Mapping[str, str]
) -> dict[Loc, Entry]:
    """A section's Spring-form variables, found by walking its known keys so that matching is
    unambiguous. Map entries have none: their keys hold dots the variable form cannot keep
    apart."""
    found: dict[Loc, Entry] = {}
    for suffix, shape in known_keys(model):
        name = env_name(f"{prefix}.{suffix}")
        if shape.kind != "scalar" or name not in environ:
            continue
        binding = bind(model, suffix.split("."))
        if binding is not None:
            key = f"{prefix}.{binding.canonical}"
            found[binding.loc] = Entry(key, environ[name], Source(env=name), binding.secret)
    return found


_S = TypeVar("_S", bound=SectionSettings)


def _as(model: type[_S], settings: SectionSettings | None) -> _S | None:
    return settings if isinstance(settings, model) else None


def _present(model: type[_S], found: Mapping[str, SectionSettings | None]) -> dict[str, _S]:
    """The sections that have settings of ``model``'s type, by name."""
    return {name: settings for name, settings in found.items() if isinstance(settings, model)}


def _reading_order(problem: ConfigProblem, files: tuple[str, ...]) -> tuple[int, int]:
    """Sort key putting problems in the order a reader meets them: file by file, line by line,
    then environment variables, then problems with no single source."""
    if problem.source is None:
        return (len(files) + 1, 0)
    return source_order(problem.source, files)


class _Loader:
    def __init__(self, plugins: PluginHost) -> None:
        self.plugins = plugins
        self.queue_types = plugins.queue_types()
        self.problems: list[ConfigProblem] = []
        self.default_section = Section(
            DefaultEventQueueSettings.section, DefaultEventQueueSettings, CORE_PLUGIN
        )
        # One Section per prefix: types that share a section (amqp_queue and amqp_exchange
        # both read conductor.event-queues.amqp) are bound and validated once.
        self.queue_sections: dict[str, Section] = {}
        self.section_of: dict[str, str] = {}
        for name, reg in self.queue_types.items():
            prefix = reg.queue_type.section
            if prefix not in self.queue_sections:
                self.queue_sections[prefix] = Section(
                    prefix, reg.queue_type.settings, reg.plugin.label
                )
            self.section_of[name] = prefix
        self._sections_by_normal = {
            normalize(prefix.rsplit(".", 1)[1]): prefix for prefix in self.queue_sections
        }
        # Sections such as conductor.server, declared by the plugins that own them.
        self.plugin_sections = {
            normalize(reg.prefix.split(".", 1)[1]): Section(reg.prefix, reg.model, reg.plugin.label)
            for reg in plugins.config_sections().values()
        }
        self._types_by_normal = {normalize(name): name for name in self.queue_types}
        self._reported_missing: set[str] = set()
        self.files: tuple[str, ...] = ()

    def load(
        self, raw: list[RawProperty], env: Mapping[str, str], files: tuple[str, ...]
    ) -> Configuration:
        for prop in raw:
            self._accept(prop)
        if any(name.startswith("CONDUCTOR_") for name in env):
            for section in self._sections():
                section.environment = spring_environment(section.prefix, section.model, env)
        self.files = files
        entries = {
            entry.key: entry for section in self._sections() for entry in section.origins.values()
        }
        default = self._validate(self.default_section)
        validated = {
            prefix: self._validate(section) for prefix, section in self.queue_sections.items()
        }
        queues = {name: validated[prefix] for name, prefix in self.section_of.items()}
        sections = {
            section.prefix: self._validate(section) for section in self.plugin_sections.values()
        }
        config = Configuration(
            entries,
            _as(DefaultEventQueueSettings, default.settings) or DefaultEventQueueSettings(),
            _present(QueueSettings, {name: v.settings for name, v in queues.items()}),
            self.problems,
            files,
            sections=_present(SectionSettings, {name: v.settings for name, v in sections.items()}),
        )
        self._check_default_type(config)
        # The plugins check what validated, and in an invalid section the values that did:
        # a problem they find on a key already reported is the same problem again.
        checking = Configuration(
            entries,
            _as(DefaultEventQueueSettings, default.checked) or DefaultEventQueueSettings(),
            _present(QueueSettings, {name: v.checked for name, v in queues.items()}),
            [],
            files,
            sections=_present(SectionSettings, {name: v.checked for name, v in sections.items()}),
        )
        reported = {problem.key for problem in self.problems}
        found = self.plugins.validate_config(checking)
        config.problems.extend(problem for problem in found if problem.key not in reported)
        config.problems.sort(key=lambda problem: _reading_order(problem, files))
        return config

    def _sections(self) -> list[Section]:
        return [
            self.default_section,
            *self.plugin_sections.values(),
            *self.queue_sections.values(),
        ]

    # -- binding ---------------------------------------------------------------------------

    def _accept(self, prop: RawProperty) -> None:
        segments = prop.key.split(".")
        if len(segments) < 2 or normalize(segments[0]) != "conductor":
            return
        group = normalize(segments[1])
        if group == "defaulteventqueue":
            self._bind(self.default_section, segments[2:], prop)
        elif group in self.plugin_sections:
            self._bind(self.plugin_sections[group], segments[2:], prop)
        elif group == "eventqueues":
            self._accept_queue_key(segments, prop)

    def _accept_queue_key(self, segments: list[str], prop: RawProperty) -> None:
        if len(segments) < 4:
            self.problems.append(
                ConfigProblem(
                    prop.key,
                    f"incomplete key: expected {QUEUES_PREFIX}.<type>.<property>",
                    prop.source,
                    CORE_PLUGIN,
                )
            )
            return
        type_name = segments[2]
        if type_name == "default":
            return  # the Conductor server's own internal queue switch
        known = self._sections_by_normal.get(normalize(type_name))
        if known:
            self._bind(self.queue_sections[known], segments[3:], prop)
            return
        elsewhere = self._types_by_normal.get(normalize(type_name))
        if elsewhere is not None:
            # A type that reads another section (amqp_queue reads amqp): each such key is
            # reported with the key it was meant to be.
            prefix = self.section_of[elsewhere]
            message = (
                f"queue type {elsewhere!r} reads its settings from {prefix}; "
                f"did you mean '{'.'.join([prefix, *segments[3:]])}'?"
            )
        elif type_name not in self._reported_missing:
            self._reported_missing.add(type_name)
            message = self._unavailable(type_name)
        else:
            return
        self.problems.append(
            ConfigProblem(prop.key, message, prop.source, CORE_PLUGIN, lenient=True)
        )

    def _bind(self, section: Section, segments: list[str], prop: RawProperty) -> None:
        binding = bind(section.model, segments)
        if binding is None:
            self.problems.append(
                ConfigProblem(
                    prop.key,
                    self._unknown_message(section, segments),
                    prop.source,
                    section.plugin,
                    lenient=True,
                )
            )
            return
        key = f"{section.prefix}.{binding.canonical}"
        section.files[binding.loc] = Entry(key, prop.value, prop.source, binding.secret)

    @staticmethod
    def _unknown_message(section: Section, segments: list[str]) -> str:
        written = "-".join(segments) if segments else ""
        candidates = [suffix for suffix, _ in known_keys(section.model)]
        normal = {normalize(c.replace(".", "")): c for c in candidates}
        close = difflib.get_close_matches(
            normalize(written.replace(".", "")), list(normal), n=1, cutoff=0.6
        )
        hint = f"; did you mean '{section.prefix}.{normal[close[0]]}'?" if close else ""
        return f"unknown property of section {section.prefix}{hint}"

    # -- validation ------------------------------------------------------------------------

    def _validate(self, section: Section) -> Validated:
        validated = validate_section(section, self.files)
        self.problems.extend(validated.problems)
        return validated

    def _unavailable(self, type_name: str) -> str:
        """Why no loaded plugin provides a queue type: not installed, blocked, or failed."""
        return unloaded_type(type_name, self.plugins) or (
            f"no installed plugin provides queue type {type_name!r}; {install_hint(type_name)}"
        )

    def _check_default_type(self, config: Configuration) -> None:
        type_name = config.default_queue.type
        if not type_name:
            return
        key = f"{DefaultEventQueueSettings.section}.type"
        source = config.source_of(key)
        if type_name not in self.queue_types:
            self.problems.append(
                ConfigProblem(key, self._unavailable(type_name), source, CORE_PLUGIN)
            )
        elif type_name in config.queues and not config.enabled(type_name):
            self.problems.append(
                ConfigProblem(
                    key,
                    f"queue type {type_name!r} is not enabled; set "
                    f"{self.section_of[type_name]}.enabled=true",
                    source,
                    CORE_PLUGIN,
                )
            )
