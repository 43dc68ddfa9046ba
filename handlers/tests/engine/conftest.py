"""Fixtures for the event handler tests: a JavaScript engine, the Conductor API double, a
client to it, a real ``local`` queue, and a processor wired to all of them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conductor_events.config import load_configuration
from conductor_events.event_queues import EventQueues
from conductor_events.plugins import PluginHost
from conductor_events_handlers.client import ConductorClient
from conductor_events_handlers.loader import event_check, load_handlers
from conductor_events_handlers.processor import AckPolicy, HandlerProcessor
from conductor_events_handlers.scripting import ScriptEngine
from conductor_events_handlers.settings import EventHandlerSettings, ServerSettings
from conductor_events_handlers.testing.conductor_double import ConductorDouble
from tests.support.plugins import local_and_handlers

EVENT = "local:conductor_doug_testing"


@pytest.fixture(scope="session")
def engine() -> Iterator[ScriptEngine]:
    """One engine for the session, as a service has; short limits keep failure tests quick."""
    js = ScriptEngine(timeout=0.3, memory_limit=16 << 20)
    yield js
    js.close()


@pytest.fixture
def host() -> PluginHost:
    return local_and_handlers()


@pytest.fixture
def properties(tmp_path: Path) -> Path:
    path = tmp_path / "app.properties"
    path.write_text(
        f"conductor.event-queues.local.path={tmp_path / 'queue.db'}\n"
        "conductor.event-queues.local.visibility-timeout=30s\n"
        "conductor.event-queues.local.max-deliveries=10\n"
        "conductor.event-queues.local.poll-interval=20ms\n"
        f"conductor.event-handlers.executions.path={tmp_path / 'executions.db'}\n"
    )
    return path


@pytest.fixture
async def queues(host: PluginHost, properties: Path) -> AsyncIterator[EventQueues]:
    async with EventQueues.from_files([properties], plugins=host, environ={}) as event_queues:
        yield event_queues


@pytest.fixture
async def double() -> AsyncIterator[ConductorDouble]:
    async with ConductorDouble() as server:
        server.register_workflow("doug", ["task_1_ref", "task_2_ref"])
        yield server


def server_settings(url: str, **values: Any) -> ServerSettings:
    return ServerSettings.model_validate({"url": url, "read_timeout": "2s", **values})


ATTEMPTS = 1 + server_settings("http://127.0.0.1/api").retries
"""Times the client sends an idempotent request that keeps failing transiently: a fault
injected this many times is what a handler sees as a failure."""


@pytest.fixture
async def client(double: ConductorDouble) -> AsyncIterator[ConductorClient]:
    async with ConductorClient(server_settings(double.url)) as conductor:
        yield conductor


HandlerFactory = Callable[..., Awaitable[HandlerProcessor]]


@pytest.fixture
async def make_processor(
    tmp_path: Path,
    engine: ScriptEngine,
    client: ConductorClient,
    host: PluginHost,
    properties: Path,
) -> AsyncIterator[HandlerFactory]:
    """Build a processor from handler definitions (dicts), loaded through a real file."""
    made: list[HandlerProcessor] = []
    counter = iter(range(1000))

    async def make(
        *definitions: dict[str, Any], policy: AckPolicy | None = None
    ) -> HandlerProcessor:
        path = tmp_path / f"handlers{next(counter)}.json"
        path.write_text(json.dumps(list(definitions)))
        config = load_configuration([properties], host, {})
        result = load_handlers([path], engine, check_event=event_check(config, host))
        result.raise_for_problems()
        processor = HandlerProcessor.create(
            result.handlers, engine, client, config.section(EventHandlerSettings)
        )
        if policy is not None:
            processor.policy = policy
        made.append(processor)
        return processor

    yield make
    for processor in made:
        processor.close()


def handler(
    actions: list[dict[str, Any]],
    *,
    name: str = "h1",
    event: str = EVENT,
    condition: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A handler definition in Conductor's JSON format, active."""
    definition: dict[str, Any] = {"name": name, "event": event, "actions": actions, "active": True}
    if condition is not None:
        definition["condition"] = condition
    definition.update(extra)
    return definition
