"""Fixtures and helpers for tests of ``conductor-events serve``: the service as a real
subprocess on the ``local`` queue, the Conductor API double in the test process, and helpers to
publish, watch the service's JSON log lines, and send real signals.

A test folder uses them by importing everything into its ``conftest.py``
(``from conductor_events_handlers.testing.service import *``); the handlers package's own
service tests and the repository's cross-package ones (a broker restarted under ``serve``)
share them that way."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
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


async def eventually(
    check: Callable[[], Any], timeout: float = 30.0, what: str = "condition"
) -> None:
    """Poll ``check`` (sync or async) until it is truthy; the event loop keeps serving."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.02)


class Service:
    """One ``conductor-events serve`` process; its JSON log lines go to a file."""

    def __init__(self, args: Sequence[str], cwd: Path, log: Path, env: dict[str, str]) -> None:
        self.log_path = log
        self._log = log.open("ab")
        self._offset = 0
        self.lines: list[dict[str, Any]] = []
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "conductor_events",
                "--log-level",
                "info",
                "--log-format",
                "json",
                "serve",
                *args,
            ],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )

    def read_log(self) -> list[dict[str, Any]]:
        with self.log_path.open("rb") as file:
            file.seek(self._offset)
            data = file.read()
        end = data.rfind(b"\n") + 1
        self._offset += end
        for raw in data[:end].splitlines():
            try:
                self.lines.append(json.loads(raw))
            except ValueError:
                self.lines.append({"event": "(not json)", "text": raw.decode(errors="replace")})
        return self.lines

    def logged(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.read_log() if line.get("event") == event]

    async def wait_logged(self, event: str, timeout: float = 20.0) -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        def check() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}: {self.text()}")
            found[:] = self.logged(event)
            return bool(found)

        await eventually(check, timeout, f"log line {event}")
        return found[0]

    async def wait_exit(self, timeout: float = 30.0) -> int:
        await eventually(lambda: self.proc.poll() is not None, timeout, "serve to exit")
        self._log.close()
        return self.proc.returncode

    def signal(self, signum: signal.Signals) -> None:
        self.proc.send_signal(signum)

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    @property
    def port(self) -> int:
        lines = self.logged("serve.http.listening")
        assert lines, "serve logged no HTTP address"
        return int(lines[0]["port"])

    def get(self, path: str) -> tuple[int, str]:
        """A GET to the service's HTTP endpoint (blocking; call with asyncio.to_thread)."""
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


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
