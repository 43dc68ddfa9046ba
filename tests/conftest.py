"""Fixtures for the core tests. Tests never load the plugins installed in the environment:
each builds its own PluginHost and registers the plugins it needs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

import conductor_events.local.plugin
from conductor_events.config import Configuration, load_configuration
from conductor_events.plugins import PluginHost
from conductor_events.runtime import EventQueues

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


@pytest.fixture
async def queues(
    plugins: PluginHost, write_properties: Callable[..., Path], queue_path: Path
) -> AsyncIterator[EventQueues]:
    """EventQueues on a fresh local queue file, with a short visibility timeout."""
    config = write_properties(
        f"conductor.event-queues.local.path={queue_path}\n"
        "conductor.event-queues.local.visibility-timeout=2s\n"
        "conductor.event-queues.local.max-deliveries=3\n"
        "conductor.event-queues.local.poll-interval=20ms\n"
    )
    async with EventQueues.from_files([config], plugins=plugins, environ={}) as event_queues:
        yield event_queues
