"""Fixtures and helpers for tests of ``conductor-events serve``: the service as a real
subprocess on the ``local`` queue, the Conductor API double in the test process, and helpers to
publish, watch the service's JSON log lines, and send real signals.

A test folder uses them by importing everything into its ``conftest.py``
(``from conductor_events_handlers.testing.service import *``); the handlers package's own
service tests and the repository's cross-package ones (a broker restarted under ``serve``)
share them that way."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import conductor_events.local.plugin
from conductor_events.event_queues import EventQueues
from conductor_events.local.client import LocalQueueClient
from conductor_events.messages import Message
from conductor_events.plugins import PluginHost
from conductor_events_handlers.testing.cli import cli_env
from conductor_events_handlers.testing.command_process import CommandProcess
from conductor_events_handlers.testing.command_process import eventually as eventually
from conductor_events_handlers.testing.conductor_double import ConductorDouble

WORKFLOW = "bridge"
EVENT = "local:orders"


@pytest.fixture
async def double() -> AsyncIterator[ConductorDouble]:
    async with ConductorDouble() as server:
        server.register_workflow(WORKFLOW, ["task_a", "task_b"])
        yield server


def write_properties(path: Path, double: ConductorDouble, **overrides: str) -> Path:
    """Short timeouts so redelivery after a crash happens within a test. The execution
    records' lease keeps its default (5 minutes): a restarted service takes over the records
    of the process it replaces because that process is gone, not because the lease ran out."""
    values = {
        "conductor.server.url": double.url,
        "conductor.server.read-timeout": "10s",
        "conductor.event-queues.local.path": str(path.parent / "queue.db"),
        "conductor.event-queues.local.visibility-timeout": "3s",
        "conductor.event-queues.local.max-deliveries": "50",
        "conductor.event-queues.local.poll-interval": "20ms",
        "conductor.event-handlers.executions.path": str(path.parent / "executions.db"),
        "conductor.event-handlers.retry.max-attempts": "40",
        "conductor.event-handlers.retry.initial-backoff": "100ms",
        "conductor.event-handlers.retry.max-backoff": "500ms",
        "conductor.event-handlers.concurrency": "8",
        "conductor.event-handlers.reload-interval": "200ms",
        "conductor.event-handlers.reconnect.initial-backoff": "100ms",
        "conductor.event-handlers.reconnect.max-backoff": "500ms",
    }
    values.update(overrides)
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    return path


def complete_handler(event: str = EVENT, name: str = "complete_a", **extra: Any) -> dict[str, Any]:
    """A handler completing ``task_a`` of the message's workflow with the message's ``n``."""
    return {
        "name": name,
        "event": event,
        "actions": [
            {
                "action": "complete_task",
                "complete_task": {
                    "workflowId": "${workflowInstanceId}",
                    "taskRefName": "task_a",
                    "output": {"n": "${n}", "by": name},
                },
            }
        ],
        "active": True,
        **extra,
    }


def write_handlers(path: Path, *handlers: dict[str, Any]) -> Path:
    replace_file(path, json.dumps(list(handlers), indent=2))
    return path


def replace_file(path: Path, text: str) -> None:
    """Replace a file at once, as an editor or a deployment does, so a service polling it
    never reads half of it."""
    staging = path.with_name(path.name + ".tmp")
    staging.write_text(text)
    os.replace(staging, path)


class Publisher:
    """Publishes to, and inspects, the local queue file the service consumes."""

    def __init__(self, queues: EventQueues) -> None:
        self.queues = queues

    async def publish(self, event: str, messages: Sequence[Message]) -> None:
        for start in range(0, len(messages), 500):
            result = await self.queues.publish(event, messages[start : start + 500])
            assert result.ok, result.failure_summary()

    async def depth(self, event: str) -> int:
        client = self.queues.client("local")
        assert isinstance(client, LocalQueueClient)
        return await client.depth(event.split(":", 1)[1])


@contextlib.asynccontextmanager
async def open_publisher(properties: Path) -> AsyncIterator[Publisher]:
    host = PluginHost(entry_points=[], environ={})
    host.add_plugin(conductor_events.local.plugin, "local", distribution="conductor-events")
    async with EventQueues.from_files([properties], plugins=host, environ={}) as queues:
        yield Publisher(queues)


@pytest.fixture
async def publisher(tmp_path: Path, double: ConductorDouble) -> AsyncIterator[Publisher]:
    async with open_publisher(write_properties(tmp_path / "publisher.properties", double)) as pub:
        yield pub


def start_workflows(double: ConductorDouble, count: int) -> list[str]:
    return [double.start_workflow(WORKFLOW) for _ in range(count)]


def order_messages(workflow_ids: Sequence[str], prefix: str = "m") -> list[Message]:
    return [
        Message({"workflowInstanceId": wf, "n": i}, id=f"{prefix}-{i}")
        for i, wf in enumerate(workflow_ids)
    ]


def completed(double: ConductorDouble, workflow_ids: Sequence[str]) -> int:
    return sum(1 for wf in workflow_ids if double.task(wf, "task_a")["status"] == "COMPLETED")


class Service(CommandProcess):
    """One ``conductor-events serve`` process; its JSON log lines go to a file."""

    command = "serve"


ServiceFactory = Callable[..., Service]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServiceFactory]:
    """Start ``serve`` processes with the given arguments; every one is killed at the end."""
    started: list[Service] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Service:
        service = Service(
            args,
            tmp_path,
            tmp_path / f"serve{len(started)}.log",
            cli_env(env, plugins="local,handlers"),
        )
        started.append(service)
        return service

    yield start
    for service in started:
        service.kill()
