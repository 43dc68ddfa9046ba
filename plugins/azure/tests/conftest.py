"""Fixtures: the Service Bus test broker (tests/servicebus_broker.py) on 127.0.0.1, clients,
entities.

One broker serves the whole session, in a thread of the test process. If it cannot start,
every test that needs it fails, naming the cause: a missing broker is a broken test set-up,
not a skip.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conductor_events_azure import plugin as azure_plugin
from conductor_events_azure.settings import AzureSettings
from servicebus_broker import ServiceBusBroker

from conductor_events.event_queues import EventQueues
from conductor_events.plugins import PluginHost

if TYPE_CHECKING:
    from conductor_events_azure.client import AzureQueueClient

pytest_plugins = ["conductor_events.testing.pytest_plugin"]

LOCK_DURATION = 2.0
MAX_DELIVERY_COUNT = 10


@pytest.fixture(scope="session")
def broker() -> Iterator[ServiceBusBroker]:
    server = ServiceBusBroker()
    try:
        server.start()
    except Exception as exc:
        pytest.fail(f"the Service Bus test broker did not start on 127.0.0.1: {exc!r}")
    try:
        yield server
    finally:
        server.stop()


def unique(prefix: str = "q") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_queue(broker: ServiceBusBroker) -> Callable[..., str]:
    """Create a fresh queue (short lock, so expiry tests take seconds) and return its name."""

    def make(prefix: str = "q", **options: Any) -> str:
        name = unique(prefix)
        options.setdefault("lock_duration", LOCK_DURATION)
        options.setdefault("max_delivery_count", MAX_DELIVERY_COUNT)
        broker.create_queue(name, **options)
        return name

    return make


@pytest.fixture
def queue_name(make_queue: Callable[..., str]) -> str:
    return make_queue()


def settings_for(broker: ServiceBusBroker, **overrides: Any) -> AzureSettings:
    values: dict[str, Any] = {
        "enabled": True,
        "connection_string": broker.connection_string(),
        "receive": {"max_wait_time": "200ms", "lock_renewal_margin": "1s"},
        "retry": {"total": 0},
    }
    values.update(overrides)
    return AzureSettings(**values)


@pytest.fixture
async def make_client(
    broker: ServiceBusBroker,
) -> AsyncIterator[Callable[..., AzureQueueClient]]:
    """Build plugin clients with settings overrides; each is closed after the test."""
    from conductor_events_azure.client import AzureQueueClient

    made: list[AzureQueueClient] = []

    def make(**overrides: Any) -> AzureQueueClient:
        client = AzureQueueClient(settings_for(broker, **overrides))
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


@pytest.fixture
def client(make_client: Callable[..., AzureQueueClient]) -> AzureQueueClient:
    return make_client()


@pytest.fixture
def plugins() -> PluginHost:
    """A plugin host with only the Azure plugin (never the environment's entry points)."""
    host = PluginHost(entry_points=[], environ={})
    host.add_plugin(azure_plugin, "azure", distribution="conductor-events-azure", version="0.1.0")
    return host


@pytest.fixture
def properties(tmp_path: Path, broker: ServiceBusBroker) -> Callable[..., Path]:
    """Write a properties file enabling ``azure`` against the broker, plus extra lines."""

    def write(*extra: str, connection: bool = True) -> Path:
        path = tmp_path / f"app-{uuid.uuid4().hex[:6]}.properties"
        lines = ["conductor.event-queues.azure.enabled=true"]
        if connection:
            lines.append(
                f"conductor.event-queues.azure.connection-string={broker.connection_string()}"
            )
        lines += [
            "conductor.event-queues.azure.receive.max-wait-time=200ms",
            "conductor.event-queues.azure.retry.total=0",
            *extra,
        ]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    return write


@pytest.fixture
async def queues(
    plugins: PluginHost, properties: Callable[..., Path]
) -> AsyncIterator[EventQueues]:
    """EventQueues configured from a properties file, as an application would build it."""
    async with EventQueues.from_files([properties()], plugins=plugins, environ={}) as event_queues:
        yield event_queues
