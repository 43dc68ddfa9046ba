"""Fixtures for the core tests. Tests never load the plugins installed in the environment:
each builds its own PluginHost and registers the plugins it needs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

import conductor_events.local.plugin
from conductor_events.config import Configuration, load_configuration
from conductor_events.event_queues import EventQueues
from conductor_events.plugins import PluginHost
from tests.support.handlers import add_handlers

pytest_plugins = ["conductor_events.testing.pytest_plugin"]
"""The conformance kit's ``--conformance-full`` option, for tests/test_conformance_*.py."""


@pytest.fixture
def plugins() -> PluginHost:
    """A plugin host with only the built-in ``local`` queue type."""
    host = PluginHost(entry_points=[], environ={})
    host.add_plugin(conductor_events.local.plugin, "local", distribution="conductor-events")
    return host


@pytest.fixture
def write_properties(tmp_path: Path) -> Callable[..., Path]:
    """Write a properties file in the test's directory and return its path."""
    counter = iter(range(1000))

    def write(text: str, name: str | None = None) -> Path:
        path = tmp_path / (name or f"app{next(counter)}.properties")
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def load(plugins: PluginHost) -> Callable[..., Configuration]:
    """Load configuration files with the test's plugin host and an empty environment."""

    def do_load(*files: Path, environ: dict[str, str] | None = None) -> Configuration:
        return load_configuration(files, plugins, environ or {})

    return do_load


@pytest.fixture
def queue_path(tmp_path: Path) -> Path:
    return tmp_path / "queue.db"


@asynccontextmanager
async def _local_queues(
    plugins: PluginHost, write_properties: Callable[..., Path], queue_path: Path, *keys: str
) -> AsyncIterator[EventQueues]:
    """EventQueues on a fresh local queue file with these ``key=value`` local settings."""
    lines = [f"path={queue_path}", *keys]
    config = write_properties("".join(f"conductor.event-queues.local.{k}\n" for k in lines))
    async with EventQueues.from_files([config], plugins=plugins, environ={}) as event_queues:
        yield event_queues


@pytest.fixture
async def queues(
    plugins: PluginHost, write_properties: Callable[..., Path], queue_path: Path
) -> AsyncIterator[EventQueues]:
    """EventQueues on a fresh local queue file, with a short visibility timeout."""
    keys = ("visibility-timeout=2s", "max-deliveries=3", "poll-interval=20ms")
    async with _local_queues(plugins, write_properties, queue_path, *keys) as event_queues:
        yield event_queues


@pytest.fixture
async def fast(
    plugins: PluginHost, write_properties: Callable[..., Path], queue_path: Path
) -> AsyncIterator[EventQueues]:
    """A local queue whose visibility timeout passes in a fraction of a second."""
    keys = ("visibility-timeout=300ms", "max-deliveries=2", "poll-interval=10ms")
    async with _local_queues(plugins, write_properties, queue_path, *keys) as event_queues:
        yield event_queues


@pytest.fixture
def handler_sections(plugins: PluginHost) -> PluginHost:
    """The ``plugins`` host with the handlers package registered too, for core tests whose
    configuration uses its sections (``conductor.server``, ``conductor.event-handlers``,
    ``conductor.event-worker``) as examples of rules across keys and of secrets."""
    return add_handlers(plugins)
