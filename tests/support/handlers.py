"""Registering the handlers package on a test's plugin host, for core and cross-package tests
that load its sections (``conductor.server``, ``conductor.event-handlers``,
``conductor.event-worker``): without it, the loader does not bind them."""

from __future__ import annotations

import conductor_events.local.plugin
import conductor_events_handlers.plugin
from conductor_events.plugins import PluginHost


def add_handlers(host: PluginHost) -> PluginHost:
    """Register the handlers package's plugin on ``host``, as its entry point would."""
    host.add_plugin(
        conductor_events_handlers.plugin, "handlers", distribution="conductor-events-handlers"
    )
    return host


def local_and_handlers() -> PluginHost:
    """A host with only ``local`` and the handlers package, whatever else is installed."""
    host = PluginHost(entry_points=[], environ={})
    host.add_plugin(conductor_events.local.plugin, "local", distribution="conductor-events")
    return add_handlers(host)
