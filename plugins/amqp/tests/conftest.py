"""Fixtures: the RabbitMQ that runs on 127.0.0.1:5672 (guest/guest), clients of the plugin
configured for it, and a private RabbitMQ node for the broker-restart tests.

When nothing listens on 127.0.0.1:5672 the tests that need the broker are skipped, saying so;
with ``CI=true`` they fail instead, because CI machines run RabbitMQ as a service.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conductor_events_amqp import plugin as amqp_plugin
from conductor_events_amqp.client import AmqpQueueClient
from conductor_events_amqp.settings import AmqpSettings
from rabbit import Broker, PrivateNode, missing_broker

from conductor_events.plugins import PluginHost
from conductor_events.testing.servers import ServerStartError

RESTART_CLASSES = {"TestAmqpQueueRestartConformance"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The restart class runs only the reconnect scenario; its other tests, the same as the
    main conformance class's, are deselected rather than run twice."""
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        cls = getattr(item, "cls", None)
        restart_only = cls is not None and cls.__name__ in RESTART_CLASSES
        (drop if restart_only and item.name != "test_reconnect" else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def rabbitmq() -> Broker:
    """The shared broker; skipped (failed under ``CI=true``) when it is not running."""
    broker = Broker()
    missing = missing_broker(broker, os.environ)
    if missing is not None:
        why, fail = missing
        if fail:
            pytest.fail(why)
        pytest.skip(why)
    return broker


@pytest.fixture(scope="session")
def private_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateNode]:
    """A RabbitMQ node of the tests' own, which the restart tests may restart."""
    node = PrivateNode.create(tmp_path_factory.mktemp("rabbitmq-node"))
    try:
        node.start()
    except ServerStartError as exc:
        pytest.fail(f"a private RabbitMQ node did not start: {exc}")
    try:
        yield node
    finally:
        node.remove()


def settings_for(broker: Broker, **overrides: Any) -> AmqpSettings:
    values: dict[str, Any] = {
        "enabled": True,
        "hosts": broker.host,
        "port": broker.port,
        "poll_time_duration": "50ms",
        "network_recovery_interval_in_milli_secs": 300,
        "duration": "200ms",
    }
    values.update(overrides)
    return AmqpSettings(**values)


@pytest.fixture
async def make_client(
    rabbitmq: Broker,
) -> AsyncIterator[Callable[..., AmqpQueueClient]]:
    """Build clients with settings overrides; each is closed after the test, and every queue
    and exchange it declared is deleted."""
    made: list[AmqpQueueClient] = []

    def make(exchange: bool = False, **overrides: Any) -> AmqpQueueClient:
        settings = settings_for(rabbitmq, **overrides)
        connect = amqp_plugin.connect_exchange if exchange else amqp_plugin.connect_queue
        client = connect(settings)
        assert isinstance(client, AmqpQueueClient)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()
    await rabbitmq.delete(
        {name for client in made for name in client.declared_queues},
        {name for client in made for name in client.declared_exchanges},
    )


@pytest.fixture
async def client(make_client: Callable[..., AmqpQueueClient]) -> AmqpQueueClient:
    return make_client()


@pytest.fixture
def plugins() -> PluginHost:
    """A plugin host with only the AMQP plugin (never the environment's entry points)."""
    host = PluginHost(entry_points=[], environ={})
    host.add_plugin(amqp_plugin, "amqp", distribution="conductor-events-amqp", version="0.1.0")
    return host


@pytest.fixture
def properties_file(tmp_path: Path) -> Callable[[dict[str, str]], Path]:
    def write(values: dict[str, str]) -> Path:
        path = tmp_path / "app.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
        return path

    return write
