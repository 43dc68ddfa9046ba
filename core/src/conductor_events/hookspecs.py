"""The hooks a conductor-events plugin implements: the plugin author's reference.

A plugin is a module (or object) registered under the ``conductor_events`` entry-point group
that implements some of these functions, each marked with ``@conductor_events.hookimpl``.

Why registration, not a hook per message: a publish to ``sqs:orders`` must reach the SQS plugin
alone. So the hot paths (publish, consume) are methods of the client that the registered
:class:`~conductor_events.backend.QueueType` connects; the core resolves ``type -> QueueClient``
once and caches it. Hooks that every plugin answers (collect-all) are used only at start-up,
for validation.

Types are imported under ``TYPE_CHECKING`` so that importing this module imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from conductor_events.backend import QueueType
    from conductor_events.config.model import ConfigProblem, Configuration
    from conductor_events.config.settings import SectionSettings

PROJECT = "conductor_events"
"""pluggy project name, and the entry-point group plugins register under."""

hookspec = pluggy.HookspecMarker(PROJECT)
"""Marks the specifications below (pluggy reads this module for them)."""
hookimpl = pluggy.HookimplMarker(PROJECT)
"""Marks a plugin's implementation; public API, re-exported as ``conductor_events.hookimpl``."""


@hookspec
def register_queue_types(register: Callable[[QueueType[Any]], None]) -> None:
    """Register the queue types this plugin provides: this is how it publishes and consumes.

    Call ``register`` once per type with a :class:`~conductor_events.backend.QueueType`: its
    ``name`` (the sink prefix), its ``settings`` model (the ``conductor.event-queues.<name>.*``
    section, or the one under ``conductor.event-queues`` that the model's ``section`` names,
    a subclass of :class:`~conductor_events.config.QueueSettings`) and its ``connect``
    factory, which turns validated settings into a :class:`~conductor_events.backend.QueueClient`
    whose ``publish`` and ``subscribe`` do the broker work. Types that read one section (as
    Conductor's ``amqp_queue`` and ``amqp_exchange`` read ``amqp``) register the same model.

    Called once, when plugins are first used. Two plugins registering the same name, or
    binding the same section, is a start-up error naming both. Keep this cheap: import no SDK
    here; ``connect`` does that.

    :param register: records one queue type, and which plugin registered it.
    """


@hookspec
def validate_config(config: Configuration) -> Iterable[ConfigProblem] | None:
    """Check the configuration beyond what the settings models check field by field.

    Called for every plugin (collect-all) when a configuration is loaded, after every section
    was parsed and validated by its model. A section with invalid values is present with those
    values at their defaults (they are reported already), so your checks still run on the rest;
    a problem you find on a key already reported is not repeated. Use it for rules that span
    fields or sections (for example, a FIFO-only setting used with a standard queue). Return
    problems; do not raise. Build each with ``config.problem(key, message)`` so it carries the
    property's file and line (for a key that is not set, those of the nearest key of its section
    that is) and this plugin's name and version.

    :param config: the loaded configuration, with each queue type's validated settings.
    :return: the problems found, or ``None``.
    """


@hookspec
def register_config_sections(register: Callable[[type[SectionSettings]], None]) -> None:
    """Declare the configuration sections outside ``conductor.event-queues`` this plugin owns.

    Call ``register`` once per section with a
    :class:`~conductor_events.config.settings.SectionSettings` subclass whose ``section`` names
    its prefix (``conductor.<name>``, one segment after ``conductor.``), as the handlers package
    declares ``conductor.server``, ``conductor.event-handlers`` and ``conductor.event-worker``.
    The loader then binds, validates and reports its keys as strictly as a queue type's, names
    this plugin in their problems, lists them in ``config show``, and a command reads the
    validated section with ``config.section(Model)``. This is how the core learns of sections
    it does not define, without importing the package that defines them.

    Called once, when plugins are first used. A section that two plugins declare, or one that
    is ``conductor.event-queues`` or ``conductor.default-event-queue``, fails the plugin.

    :param register: records one section model, and which plugin declared it.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add this plugin's commands to the ``conductor-events`` command group.

    Call ``cli.add_command(command)`` with each :class:`click.Command`. Called when the CLI
    looks up a command it does not define itself, or lists its commands for ``--help``; the
    plugins that load are those that ``CONDUCTOR_EVENTS_PLUGINS`` and
    ``CONDUCTOR_EVENTS_BLOCK_PLUGINS`` let load. Import the command's work inside its function,
    so that listing commands stays cheap. A name the core or another plugin already uses is a
    plugin failure.

    :param cli: the ``conductor-events`` group.
    """
