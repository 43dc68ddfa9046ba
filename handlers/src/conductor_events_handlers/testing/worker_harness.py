"""Fixtures and helpers for tests of the EVENT worker: the Conductor API double with a
workflow whose first task is a worker task of type ``event_publish``, the worker loop run in the
test's event loop against real queues, and ``conductor-events worker`` as a subprocess.

A test folder uses them by importing everything into its ``conftest.py``
(``from conductor_events_handlers.testing.worker_harness import *``), as the handlers package's
worker tests and the repository's cross-package ones (real brokers) do."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from conductor_events.event_queues import EventQueues
from conductor_events_handlers.client import ConductorClient
from conductor_events_handlers.settings import ServerSettings
from conductor_events_handlers.testing.cli import cli_env
from conductor_events_handlers.testing.command_process import CommandProcess
from conductor_events_handlers.testing.command_process import eventually as eventually
from conductor_events_handlers.testing.conductor_double import ConductorDouble
from conductor_events_handlers.worker.metrics import WorkerMetrics
from conductor_events_handlers.worker.runner import TaskWorker, WorkerOptions

WORKFLOW = "publish_flow"
TASK_TYPE = "event_publish"


@pytest.fixture
async def double() -> AsyncIterator[ConductorDouble]:
    async with ConductorDouble() as server:
        register(server)
        yield server


def register(server: ConductorDouble) -> None:
    """``publish_flow``: ``publish`` (an ``event_publish`` task sending the workflow's
    ``order`` to the workflow's ``sink``), then ``after`` (a WAIT task)."""
    server.register_workflow(
        WORKFLOW,
        [("publish", TASK_TYPE), "after"],
        inputs={
            "publish": {
                "sink": "${workflow.input.sink}",
                "order": "${workflow.input.order}",
                "asyncComplete": "${workflow.input.async}",
            }
        },
    )


def start(double: ConductorDouble, sink: str, count: int, **input: Any) -> list[str]:
    return [
        double.start_workflow(
            WORKFLOW, input={"sink": sink, "order": n, **input}, correlation_id=f"c-{n}"
        )
        for n in range(count)
    ]


FAST = WorkerOptions(
    task_types=(TASK_TYPE,),
    worker_id="test-worker",
    poll_count=10,
    poll_timeout=0.2,
    concurrency=8,
    initial_backoff=0.05,
    max_backoff=0.2,
    shutdown_timeout=10.0,
)


class RunningWorker:
    """A :class:`TaskWorker` running as a task of the test's loop; :meth:`stop` as SIGTERM."""

    def __init__(self, worker: TaskWorker, flag: threading.Event) -> None:
        self.worker = worker
        self.flag = flag
        self.metrics = worker.metrics
        self.task = asyncio.ensure_future(worker.run())

    async def stop(self) -> None:
        self.flag.set()
        await asyncio.wait_for(self.task, 30)

    def value(self, name: str, **labels: str) -> float:
        found = self.metrics.registry.get_sample_value(name, labels)
        return 0.0 if found is None else found


WorkerFactory = Callable[..., "contextlib.AbstractAsyncContextManager[RunningWorker]"]


@pytest.fixture
def run_worker(double: ConductorDouble) -> WorkerFactory:
    @contextlib.asynccontextmanager
    async def run(queues: EventQueues, **options: Any) -> AsyncIterator[RunningWorker]:
        server = ServerSettings.model_validate({"url": double.url, "retries": 0})
        async with ConductorClient(server) as client:
            flag = threading.Event()
            worker = TaskWorker(queues, client, replace(FAST, **options), WorkerMetrics(), flag)
            running = RunningWorker(worker, flag)
            try:
                yield running
            finally:
                if not running.task.done():
                    await running.stop()

    return run


def publish_task(double: ConductorDouble, workflow_id: str) -> dict[str, Any]:
    return double.task(workflow_id, "publish")


class WorkerProcess(CommandProcess):
    """One ``conductor-events worker`` process; its JSON log lines go to a file."""

    command = "worker"


WorkerProcessFactory = Callable[..., WorkerProcess]


@pytest.fixture
def worker_process(tmp_path: Path) -> Iterator[WorkerProcessFactory]:
    """Start ``worker`` processes with the given arguments; every one is killed at the end."""
    started: list[WorkerProcess] = []

    def start_process(*args: str, plugins: str = "local,handlers") -> WorkerProcess:
        process = WorkerProcess(
            args, tmp_path, tmp_path / f"worker{len(started)}.log", cli_env(plugins=plugins)
        )
        started.append(process)
        return process

    yield start_process
    for process in started:
        process.kill()


def write_properties(path: Path, double: ConductorDouble, **overrides: str) -> Path:
    values = {
        "conductor.server.url": double.url,
        "conductor.event-queues.local.path": str(path.parent / "queue.db"),
        "conductor.event-worker.poll-timeout": "200ms",
        "conductor.event-worker.concurrency": "8",
        "conductor.event-worker.poll-count": "8",
        "conductor.event-worker.initial-backoff": "50ms",
        "conductor.event-worker.max-backoff": "500ms",
        "conductor.event-worker.worker-id": "test-worker",
    }
    values.update(overrides)
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    return path
