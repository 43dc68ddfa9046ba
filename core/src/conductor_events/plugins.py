"""Plugin discovery and the typed facade over the hooks.

One :class:`PluginHost` owns the pluggy manager. Plugins are loaded on first use, each entry
point in its own try/except, so one broken plugin is reported (name, distribution, version,
cause) while the others still load; strict mode fails fast instead. Operators steer loading
with environment variables keyed by entry-point name:

``CONDUCTOR_EVENTS_PLUGINS``
    allow-list, comma-separated; when set, only these load (empty: none).
``CONDUCTOR_EVENTS_BLOCK_PLUGINS``
    block-list, comma-separated.
``CONDUCTOR_EVENTS_STRICT_PLUGINS``
    ``1``/``true``: any plugin failure is a start-up error.
``CONDUCTOR_EVENTS_TRACE_PLUGINS``
    ``1``/``true``: log every hook call with its arguments and result, secrets masked.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import pluggy
import structlog

from conductor_events import hookspecs
from conductor_events.config.masking import described_error, masked_repr
from conductor_events.errors import PluginError
from conductor_events.hookspecs import PROJECT
from conductor_events.install_hints import KNOWN_PACKAGES

if TYPE_CHECKING:
    import click

    from conductor_events.backend import QueueType
    from conductor_events.config.model import ConfigProblem, Configuration
    from conductor_events.config.settings import SectionSettings

log = structlog.get_logger(__name__)

ENTRY_POINT_GROUP = PROJECT
ENV_ALLOW = "CONDUCTOR_EVENTS_PLUGINS"
ENV_BLOCK = "CONDUCTOR_EVENTS_BLOCK_PLUGINS"
ENV_STRICT = "CONDUCTOR_EVENTS_STRICT_PLUGINS"
ENV_TRACE = "CONDUCTOR_EVENTS_TRACE_PLUGINS"

LOADED = "loaded"
FAILED = "failed"
BLOCKED = "blocked"
DISABLED_BY_CONFIG = "disabled-by-config"


@dataclass
class PluginRecord:
    """What ``conductor-events plugins`` shows of one plugin."""

    name: str
    entry_point: str
    distribution: str | None
    version: str | None
    status: str = LOADED
    error: str | None = None
    queue_types: list[str] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)
    blocked_by: str | None = None
    """The switch that kept the plugin from loading: ``CONDUCTOR_EVENTS_PLUGINS`` or
    ``CONDUCTOR_EVENTS_BLOCK_PLUGINS``."""

    @property
    def label(self) -> str:
        """How errors name the plugin: its distribution and version, else its entry point."""
        if self.distribution:
            return f"{self.distribution} {self.version or ''}".strip()
        return self.name

    @property
    def why_not_loaded(self) -> str:
        """Why the plugin is not loaded and what to do, as a clause that follows its name."""
        if self.blocked_by == ENV_ALLOW:
            return f"which is not in {ENV_ALLOW}; add {self.name!r} to it to use it"
        if self.blocked_by == ENV_BLOCK:
            return f"which is blocked by {ENV_BLOCK}; remove {self.name!r} from it to use it"
        if self.status == FAILED:
            return f"which failed to load: {self.error}"
        return "which is loaded"

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "entry_point": self.entry_point,
            "distribution": self.distribution,
            "version": self.version,
            "queue_types": self.queue_types,
            "hooks": self.hooks,
            "status": self.status,
            "error": self.error,
        }


@dataclass(frozen=True)
class RegisteredQueueType:
    """A queue type together with the plugin that registered it."""

    queue_type: QueueType[Any]
    plugin: PluginRecord

    @property
    def name(self) -> str:
        return self.queue_type.name


@dataclass(frozen=True)
class RegisteredSection:
    """A configuration section outside ``conductor.event-queues``, with the plugin that
    declared it through ``register_config_sections``."""

    model: type[SectionSettings]
    plugin: PluginRecord

    @property
    def prefix(self) -> str:
        return self.model.section


RESERVED_SECTIONS = frozenset({"conductor.event-queues", "conductor.default-event-queue"})
"""Sections the core binds itself: no plugin may declare them."""


def _installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _names(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


class PluginHost:
    """The one plugin manager, behind methods with types (core never calls ``pm.hook`` itself).

    Args:
        entry_points: where plugins come from; ``None`` discovers the ``conductor_events``
            group of the installed distributions. Tests pass ``[]`` and add plugins explicitly.
        strict: fail on the first plugin error; ``None`` reads ``CONDUCTOR_EVENTS_STRICT_PLUGINS``.
        environ: where the env switches are read; defaults to ``os.environ``.
    """

    def __init__(
        self,
        entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
        *,
        strict: bool | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        from conductor_events.logging import log_through_stdlib_unless_configured

        log_through_stdlib_unless_configured()
        env = os.environ if environ is None else environ
        self._entry_points = entry_points
        self.strict = _truthy(env.get(ENV_STRICT)) if strict is None else strict
        self._allow = _names(env.get(ENV_ALLOW))
        self._block = _names(env.get(ENV_BLOCK)) or set()
        self._pm = pluggy.PluginManager(PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._trace = _truthy(env.get(ENV_TRACE))
        self._records: dict[str, PluginRecord] = {}
        self._queue_types: dict[str, RegisteredQueueType] = {}
        self._sections: dict[str, RegisteredSection] = {}
        self._loaded = False

    # -- loading ---------------------------------------------------------------------------

    def _call(self, impl: pluggy.HookImpl, hook: str, **kwargs: Any) -> Any:
        """Call one plugin's implementation of a hook, traced when tracing is on.

        The facade calls implementations one by one (not ``pm.hook.x``) so that one plugin's
        failure is attributed to it and does not stop the others.
        """
        plugin = self._pm.get_name(impl.plugin)
        if self._trace:
            log.info("plugins.trace.call", hook=hook, plugin=plugin, kwargs=masked_repr(kwargs))
        try:
            result = impl.function(**kwargs)
        except Exception as exc:
            if self._trace:
                log.info(
                    "plugins.trace.error", hook=hook, plugin=plugin, error=described_error(exc)
                )
            raise
        if self._trace:
            log.info("plugins.trace.result", hook=hook, plugin=plugin, result=masked_repr(result))
        return result

    def ensure_loaded(self) -> None:
        """Discover and register every entry-point plugin, once."""
        if self._loaded:
            return
        self._loaded = True
        entry_points = self._entry_points
        if entry_points is None:
            entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        for entry_point in entry_points:
            self._load_entry_point(entry_point)

    def _load_entry_point(self, entry_point: importlib.metadata.EntryPoint) -> None:
        dist = getattr(entry_point, "dist", None)
        record = PluginRecord(
            name=entry_point.name,
            entry_point=entry_point.value,
            distribution=dist.metadata["Name"] if dist is not None else None,
            version=dist.version if dist is not None else None,
        )
        if record.name in self._records:
            self._fail(
                record,
                f"entry point name {record.name!r} is already taken by "
                f"{self._records[record.name].label}",
            )
            return
        if self._allow is not None and record.name not in self._allow:
            record.status, record.error = BLOCKED, f"not listed in {ENV_ALLOW}"
            record.blocked_by = ENV_ALLOW
            self._records[record.name] = record
            return
        if record.name in self._block:
            record.status, record.error = BLOCKED, f"listed in {ENV_BLOCK}"
            record.blocked_by = ENV_BLOCK
            self._records[record.name] = record
            return
        try:
            plugin = entry_point.load()
        except Exception as exc:
            self._fail(record, f"import failed: {type(exc).__name__}: {exc}", exc)
            return
        self._register(plugin, record)

    def add_plugin(
        self,
        plugin: object,
        name: str,
        *,
        distribution: str | None = None,
        version: str | None = None,
    ) -> PluginRecord:
        """Register a plugin object directly (embedding applications, tests). A ``distribution``
        given without a ``version`` takes the installed one, so problems name both."""
        self.ensure_loaded()
        if distribution and version is None:
            version = _installed_version(distribution)
        record = PluginRecord(
            name=name,
            entry_point=getattr(plugin, "__name__", type(plugin).__name__),
            distribution=distribution,
            version=version,
        )
        if name in self._records:
            raise PluginError(f"plugin name {name!r} is already registered")
        self._register(plugin, record)
        if record.status == FAILED:
            raise PluginError(f"plugin {name!r} failed: {record.error}")
        return record

    def remove_plugin(self, name: str) -> None:
        """Unregister a plugin and forget the queue types it registered."""
        record = self._records.pop(name, None)
        plugin = self._pm.get_plugin(name)
        if plugin is not None:
            self._pm.unregister(plugin)
        if record is not None:
            for type_name in record.queue_types:
                self._queue_types.pop(type_name, None)
            for prefix in [p for p, s in self._sections.items() if s.plugin is record]:
                del self._sections[prefix]

    def _register(self, plugin: object, record: PluginRecord) -> None:
        self._records[record.name] = record
        try:
            self._pm.register(plugin, name=record.name)
            self._pm.check_pending()
        except Exception as exc:
            if self._pm.get_plugin(record.name) is not None:
                self._pm.unregister(name=record.name)
            self._fail(record, f"invalid hook implementation: {exc}", exc)
            return
        record.hooks = sorted(caller.name for caller in self._pm.get_hookcallers(plugin) or [])
        self._register_queue_types(plugin, record)
        if record.status != FAILED:
            self._register_sections(plugin, record)

    def _impls(self, hook: str, plugin: object) -> list[pluggy.HookImpl]:
        caller = getattr(self._pm.hook, hook)
        return [impl for impl in caller.get_hookimpls() if impl.plugin is plugin]

    def _register_sections(self, plugin: object, record: PluginRecord) -> None:
        from conductor_events.config.binding import normalize

        declared: list[type[SectionSettings]] = []
        try:
            for impl in self._impls("register_config_sections", plugin):
                self._call(impl, "register_config_sections", register=declared.append)
        except Exception as exc:
            self._unregister_failed(record)
            self._fail(record, f"register_config_sections failed: {type(exc).__name__}: {exc}", exc)
            return
        for model in declared:
            name = model.section.removeprefix("conductor.")
            if (
                name == model.section
                or not name
                or "." in name
                or model.section in (RESERVED_SECTIONS)
            ):
                self._unregister_failed(record)
                self._fail(
                    record,
                    f"section {model.section!r} of {model.__name__} is not one it may declare; "
                    "expected conductor.<name> (one segment, not event-queues or "
                    "default-event-queue)",
                )
                return
            owner = self._sections.get(normalize(model.section))
            if owner is not None:
                raise PluginError(
                    f"section {model.section} is declared by two plugins: {owner.plugin.label} "
                    f"and {record.label}; uninstall or block one with {ENV_BLOCK}"
                )
        for model in declared:
            self._sections[normalize(model.section)] = RegisteredSection(model, record)

    def _unregister_failed(self, record: PluginRecord) -> None:
        """Forget what a plugin registered before one of its hooks failed."""
        for type_name in record.queue_types:
            self._queue_types.pop(type_name, None)
        record.queue_types = []
        self._pm.unregister(name=record.name)

    def _register_queue_types(self, plugin: object, record: PluginRecord) -> None:
        impls = [
            impl
            for impl in self._pm.hook.register_queue_types.get_hookimpls()
            if impl.plugin is plugin
        ]
        registered: list[QueueType[Any]] = []
        try:
            for impl in impls:
                self._call(impl, "register_queue_types", register=registered.append)
        except Exception as exc:
            self._pm.unregister(name=record.name)
            self._fail(record, f"register_queue_types failed: {type(exc).__name__}: {exc}", exc)
            return
        for queue_type in registered:
            owner = self._queue_types.get(queue_type.name)
            if owner is not None:
                raise PluginError(
                    f"queue type {queue_type.name!r} is registered by two plugins: "
                    f"{owner.plugin.label} (entry point {owner.plugin.name}) and "
                    f"{record.label} (entry point {record.name}); uninstall or block one "
                    f"with {ENV_BLOCK}"
                )
        problem = self._section_problem(registered, record)
        if problem is not None:
            self._pm.unregister(name=record.name)
            self._fail(record, problem)
            return
        for queue_type in registered:
            self._queue_types[queue_type.name] = RegisteredQueueType(queue_type, record)
            record.queue_types.append(queue_type.name)

    def _section_problem(
        self, registered: list[QueueType[Any]], record: PluginRecord
    ) -> str | None:
        """Why the sections ``registered`` bind cannot be bound, or ``None``.

        A section is one properties prefix under ``conductor.event-queues``, validated once,
        so the types that share it must come from one plugin and register one model; a section
        another plugin's type binds is raised as a conflict naming both plugins.
        """
        from conductor_events.config.binding import normalize
        from conductor_events.config.model import QUEUES_PREFIX

        owners = {normalize(reg.queue_type.section): reg for reg in self._queue_types.values()}
        mine: dict[str, QueueType[Any]] = {}
        for queue_type in registered:
            section = queue_type.section
            name = section.removeprefix(f"{QUEUES_PREFIX}.")
            if name == section or not name or "." in name or name == "default":
                return (
                    f"queue type {queue_type.name!r} names section {section!r}; expected "
                    f"{QUEUES_PREFIX}.<name> (one segment, not 'default')"
                )
            key = normalize(section)
            other = mine.setdefault(key, queue_type)
            if other.settings is not queue_type.settings:
                return (
                    f"queue types {other.name!r} and {queue_type.name!r} both bind {section} "
                    "with different settings models; types that share a section register "
                    "one model"
                )
            owner = owners.get(key)
            if owner is not None and owner.plugin.name != record.name:
                raise PluginError(
                    f"section {section} is bound by two plugins: {owner.plugin.label} (queue "
                    f"type {owner.name!r}) and {record.label} (queue type {queue_type.name!r}); "
                    f"uninstall or block one with {ENV_BLOCK}"
                )
        return None

    def _fail(self, record: PluginRecord, error: str, exc: Exception | None = None) -> None:
        record.status, record.error = FAILED, error
        self._records[record.name] = record
        log.warning(
            "plugins.load.failed",
            plugin=record.name,
            distribution=record.distribution,
            version=record.version,
            error=error,
        )
        if self.strict:
            raise PluginError(
                f"plugin {record.name} ({record.label}) failed to load: {error}"
            ) from exc

    # -- the typed facade ------------------------------------------------------------------

    def records(self) -> list[PluginRecord]:
        """Every discovered plugin, loaded or not, in discovery order."""
        self.ensure_loaded()
        return list(self._records.values())

    def queue_types(self) -> Mapping[str, RegisteredQueueType]:
        """Every registered queue type by name."""
        self.ensure_loaded()
        return self._queue_types

    def queue_type(self, name: str) -> RegisteredQueueType | None:
        """The queue type registered under ``name``, or ``None``."""
        self.ensure_loaded()
        return self._queue_types.get(name)

    def config_sections(self) -> Mapping[str, RegisteredSection]:
        """The sections plugins declared through ``register_config_sections``, by their
        normalized prefix."""
        self.ensure_loaded()
        return self._sections

    def add_commands(self, cli: click.Group) -> None:
        """Let every loaded plugin add its commands to ``cli`` (``register_commands``).

        A plugin whose hook raises, or that replaces a command the core or an earlier plugin
        added, is reported as failed (strict mode raises) and what it added is taken back;
        the others' commands stay.
        """
        self.ensure_loaded()
        for impl in self._pm.hook.register_commands.get_hookimpls():
            name = self._pm.get_name(impl.plugin) or "?"
            record = self._records.get(name)
            before = dict(cli.commands)
            try:
                self._call(impl, "register_commands", cli=cli)
            except Exception as exc:
                cli.commands.clear()
                cli.commands.update(before)
                if record is not None:
                    self._fail(record, f"register_commands failed: {described_error(exc)}", exc)
                continue
            taken = sorted(n for n, c in before.items() if cli.commands.get(n) is not c)
            if taken:
                cli.commands.clear()
                cli.commands.update(before)
                if record is not None:
                    self._fail(record, f"register_commands replaced command(s) {taken}")

    def command_provider(self, package: str) -> PluginRecord | None:
        """The discovered plugin of distribution ``package``, loaded or not, or ``None``."""
        self.ensure_loaded()
        return next((r for r in self._records.values() if r.distribution == package), None)

    def unloaded_provider(self, type_name: str) -> PluginRecord | None:
        """The discovered plugin that would provide queue type ``type_name`` but is not loaded
        (blocked by a switch, or failed): the one whose entry-point name is the type's, or whose
        distribution is the package known to provide it. ``None`` when there is none."""
        self.ensure_loaded()
        package = KNOWN_PACKAGES.get(type_name)
        for record in self._records.values():
            if record.status == LOADED:
                continue
            if record.name == type_name or (package and record.distribution == package):
                return record
        return None

    def validate_config(self, config: Configuration) -> list[ConfigProblem]:
        """Collect the problems every plugin's ``validate_config`` finds."""
        self.ensure_loaded()
        problems: list[ConfigProblem] = []
        for impl in self._pm.hook.validate_config.get_hookimpls():
            name = self._pm.get_name(impl.plugin) or "?"
            record = self._records.get(name)
            with config.reporting_as(record.label if record else name):
                found = self._call(impl, "validate_config", config=config)
                problems.extend(cast("Iterable[ConfigProblem] | None", found) or ())
        return problems
