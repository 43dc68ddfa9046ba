"""``conductor-events worker`` refuses bad configuration and an unusable Conductor with one
line and exit 2, and authenticates with an Orkes application key as ``serve`` does."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from conductor_events.event_queues import EventQueues
from conductor_events.testing.servers import free_port
from conductor_events_handlers.client import ConductorClient
from conductor_events_handlers.settings import ServerSettings
from conductor_events_handlers.testing.cli import run_cli
from conductor_events_handlers.testing.conductor_double import ConductorDouble
from conductor_events_handlers.worker.metrics import WorkerMetrics
from conductor_events_handlers.worker.runner import TaskWorker

from .conftest import FAST, eventually, publish_task, register, start


def test_an_invalid_key_is_one_line_naming_file_line_and_key(tmp_path: Path) -> None:
    properties = tmp_path / "app.properties"
    properties.write_text(
        "conductor.event-worker.concurrency=8\nconductor.event-worker.poll-timeout=10s\n"
    )
    result = run_cli("worker", "-c", str(properties), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {properties}:2: conductor.event-worker.poll-timeout: ")
    assert "between 0 and 5s (Conductor's limit)" in lines[0]
    assert "Traceback" not in result.stderr


def test_require_conductor_exits_2_when_it_cannot_be_reached(tmp_path: Path) -> None:
    properties = tmp_path / "app.properties"
    properties.write_text(f"conductor.server.url=http://127.0.0.1:{free_port()}/api\n")
    result = run_cli("worker", "-c", str(properties), "--require-conductor", cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: Conductor at http://127.0.0.1:")
    assert "--require-conductor" in line


async def test_orkes_application_key(queues: EventQueues) -> None:
    async with ConductorDouble(key_id="app-key", key_secret="s3cret") as double:
        register(double)
        workflows = start(double, "local:orkes-out", 3)
        server = ServerSettings.model_validate(
            {"url": double.url, "auth": {"key": "app-key", "secret": "s3cret"}}
        )
        async with ConductorClient(server) as client:
            stop = threading.Event()
            worker = TaskWorker(queues, client, FAST, WorkerMetrics(), stop)
            running = asyncio.ensure_future(worker.run())
            await eventually(
                lambda: all(publish_task(double, w)["status"] == "COMPLETED" for w in workflows),
                what="every task completed",
            )
            stop.set()
            await running
        assert double.requests_to("POST", "^/api/token$")
        polls = double.requests_to("GET", "^/api/tasks/poll/batch/")
        assert all(r.headers.get("x-authorization") for r in polls)
