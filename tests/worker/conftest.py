"""Fixtures for the worker tests: the Conductor API double with a workflow whose first task
is a worker task of type ``event_publish``, and the worker loop run in the test's event loop
against real queues."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import pytest

from conductor_events.handlers.client import ConductorClient
from conductor_events.handlers.settings import ServerSettings
from conductor_events.runtime import EventQueues
from conductor_events.testing.conductor_double import ConductorDouble
from conductor_events.worker.metrics import WorkerMetrics
from conductor_events.worker.runner import TaskWorker, WorkerOptions

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


async def eventually(check: Callable[[], Any], timeout: float = 30.0, what: str = "it") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.02)


def publish_task(double: ConductorDouble, workflow_id: str) -> dict[str, Any]:
    return double.task(workflow_id, "publish")
