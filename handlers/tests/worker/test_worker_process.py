"""``conductor-events worker`` as a real process: probes and metrics, a graceful SIGTERM that
finishes the tasks in hand, and a SIGKILL halfway through after which every task is either
published and updated once, or timed out by Conductor and published again under its retry."""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter
from pathlib import Path

from conductor_events_handlers.testing.conductor_double import ConductorDouble

from .conftest import (
    TASK_TYPE,
    WorkerProcessFactory,
    eventually,
    publish_task,
    start,
    write_properties,
)
from .test_worker_local import drain_file

SINK = "local:worker-out"


def _has_after(double: ConductorDouble, workflow_id: str) -> bool:
    return any(t["referenceTaskName"] == "after" for t in double.workflows[workflow_id]["tasks"])


def _completed(double: ConductorDouble, workflows: list[str]) -> int:
    return sum(1 for w in workflows if _has_after(double, w))


async def test_probes_metrics_and_sigterm_finishes_tasks_in_hand(
    tmp_path: Path, double: ConductorDouble, worker_process: WorkerProcessFactory
) -> None:
    properties = write_properties(tmp_path / "app.properties", double)
    worker = worker_process("-c", str(properties), "--http", "127.0.0.1:0")
    await worker.wait_logged("worker.started")
    await eventually(lambda: bool(worker.logged("serve.http.listening")), what="HTTP endpoint")
    assert (await asyncio.to_thread(worker.get, "/health"))[0] == 200
    await eventually(lambda: worker.get("/ready")[0] == 200, what="ready after the first poll")
    ready = json.loads((await asyncio.to_thread(worker.get, "/ready"))[1])
    assert ready["pollers"][TASK_TYPE]["state"] == "polling"

    # Updates take a second each: SIGTERM arrives while eight tasks are in hand.
    double.inject(None, times=8, method="POST", path="^/api/tasks$", delay=1.0)
    workflows = start(double, SINK, 8)
    await eventually(
        lambda: all(publish_task(double, w)["status"] == "IN_PROGRESS" for w in workflows),
        what="every task polled",
    )
    worker.proc.send_signal(signal.SIGTERM)
    assert await worker.wait_exit() == 0, worker.text()
    assert [publish_task(double, w)["status"] for w in workflows] == ["COMPLETED"] * 8
    assert worker.logged("worker.stopped")
    assert len(await drain_file(tmp_path / "queue.db")) == 8


async def test_metrics_count_tasks(
    tmp_path: Path, double: ConductorDouble, worker_process: WorkerProcessFactory
) -> None:
    properties = write_properties(tmp_path / "app.properties", double)
    workflows = start(double, SINK, 5)
    worker = worker_process("-c", str(properties), "--http", "0")
    await eventually(lambda: _completed(double, workflows) == 5, what="all published")
    await eventually(lambda: bool(worker.logged("serve.http.listening")), what="HTTP endpoint")
    status, text = await asyncio.to_thread(worker.get, "/metrics")
    assert status == 200
    assert (
        'conductor_events_worker_tasks_updated_total{status="COMPLETED",task_type="event_publish"}'
        " 5.0" in text
    )


async def test_sigkill_mid_batch_then_restart_publishes_every_task(
    tmp_path: Path, double: ConductorDouble, worker_process: WorkerProcessFactory
) -> None:
    count = 300
    double.register_task_def(TASK_TYPE, response_timeout_seconds=2, retry_count=5)
    properties = write_properties(tmp_path / "app.properties", double)
    workflows = start(double, SINK, count)
    first = worker_process("-c", str(properties))
    await eventually(lambda: _completed(double, workflows) >= count // 3, 60, "a third done")
    first.proc.send_signal(signal.SIGKILL)
    assert await first.wait_exit() == -signal.SIGKILL
    assert _completed(double, workflows) < count, "the worker finished before it was killed"

    second = worker_process("-c", str(properties))
    await eventually(lambda: _completed(double, workflows) == count, 60, "every workflow on")
    second.proc.send_signal(signal.SIGTERM)
    assert await second.wait_exit() == 0, second.text()

    published = Counter(m.id for m in await drain_file(tmp_path / "queue.db"))
    updates = Counter(r.body["taskId"] for r in double.requests_to("POST", r"^/api/tasks$"))
    timed_out = 0
    for workflow_id in workflows:
        tasks = [t for t in double.workflows[workflow_id]["tasks"] if t["taskType"] == TASK_TYPE]
        *earlier, last = tasks
        # The task that completed was published, and updated once.
        assert last["status"] == "COMPLETED"
        assert published[last["taskId"]] >= 1
        assert updates[last["taskId"]] == 1
        # Any earlier one was in hand at the kill: never updated, timed out by Conductor,
        # and retried under a new id (retriedTaskId names it).
        for task in earlier:
            assert task["status"] == "TIMED_OUT"
            assert updates[task["taskId"]] == 0
            timed_out += 1
        assert [t["retriedTaskId"] for t in tasks[1:]] == [t["taskId"] for t in tasks[:-1]]
    assert timed_out <= 8  # at most the tasks in hand: concurrency 8
    assert set(published) <= {t for t in double.tasks}
