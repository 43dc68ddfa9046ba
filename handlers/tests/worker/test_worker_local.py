"""The worker against the Conductor double and a real ``local`` queue: what each task
publishes, how it is updated, and what happens when Conductor or the sink fails."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import conductor_events.local.plugin
from conductor_events.event_queues import EventQueues
from conductor_events.messages import Message
from conductor_events.plugins import PluginHost
from conductor_events_handlers.testing.conductor_double import ConductorDouble

from .conftest import WORKFLOW, WorkerFactory, eventually, publish_task, start

SINK = "local:worker-out"


async def drain_file(path: Path, event: str = SINK) -> list[Message]:
    """Every message on the queue file ``path`` (received and acked)."""
    host = PluginHost(entry_points=[], environ={})
    host.add_plugin(conductor_events.local.plugin, "local", distribution="conductor-events")
    properties = path.with_suffix(".drain.properties")
    properties.write_text(f"conductor.event-queues.local.path={path}\n")
    async with EventQueues.from_files([properties], plugins=host, environ={}) as queues:
        return await _drain(queues, event)


async def _drain(queues: EventQueues, event: str = SINK) -> list[Message]:
    """Every message on the queue (received and acked)."""
    messages: list[Message] = []
    async with await queues.subscribe(event) as subscription:
        while True:
            batch = await subscription.receive_batch(100, timeout=0.3)
            if not batch:
                return messages
            for delivery in batch:
                messages.append(delivery.message)
                await delivery.ack()


async def test_each_task_is_published_with_event_semantics_then_completed(
    double: ConductorDouble, queues: EventQueues, run_worker: WorkerFactory
) -> None:
    workflows = start(double, SINK, 25)
    async with run_worker(queues) as worker:
        await eventually(
            lambda: all(publish_task(double, w)["status"] == "COMPLETED" for w in workflows),
            what="every publish task completed",
        )
        assert (
            worker.value(
                "conductor_events_worker_tasks_updated_total",
                task_type="event_publish",
                status="COMPLETED",
            )
            == 25
        )
    messages = await _drain(queues)
    by_id = {m.id: m for m in messages}
    assert len(messages) == 25
    for n, workflow_id in enumerate(workflows):
        task = publish_task(double, workflow_id)
        message = by_id[task["taskId"]]  # the message id is the task id
        assert message.payload == {
            "sink": SINK,
            "order": n,
            "asyncComplete": False,
            "workflowInstanceId": workflow_id,
            "workflowType": WORKFLOW,
            "workflowVersion": None,
            "correlationId": f"c-{n}",
        }
        assert task["outputData"] == {**message.payload, "event_produced": SINK}
        assert task["workerId"] == "test-worker"
        assert double.task(workflow_id, "after")["status"] == "IN_PROGRESS"


async def test_async_complete_stays_in_progress_and_is_not_published_again(
    double: ConductorDouble, queues: EventQueues, run_worker: WorkerFactory
) -> None:
    (workflow_id,) = start(double, SINK, 1, **{"async": True})
    # Conductor hands an IN_PROGRESS task out again after callbackAfterSeconds (0 here).
    async with run_worker(queues, in_progress_callback=0.0) as worker:
        await eventually(lambda: publish_task(double, workflow_id)["pollCount"] >= 3, what="polls")
        skipped = worker.value(
            "conductor_events_worker_publishes_skipped_total", task_type="event_publish"
        )
    task = publish_task(double, workflow_id)
    assert task["status"] == "IN_PROGRESS"
    assert task["outputData"]["event_produced"] == SINK
    assert skipped >= 2
    assert [m.id for m in await _drain(queues)] == [task["taskId"]]


async def test_failed_updates_are_retried_without_publishing_again(
    double: ConductorDouble, queues: EventQueues, run_worker: WorkerFactory
) -> None:
    workflows = start(double, SINK, 5)
    # Three refusals, then two updates that Conductor applies but whose answer is lost.
    double.inject(503, times=3, method="POST", path="^/api/tasks$")
    double.inject(None, times=2, method="POST", path="^/api/tasks$", drop=True)
    async with run_worker(queues) as worker:
        await eventually(
            lambda: all(publish_task(double, w)["status"] == "COMPLETED" for w in workflows),
            what="every publish task completed",
        )
        retries = worker.value(
            "conductor_events_worker_update_retries_total", task_type="event_publish"
        )
    assert retries == 5
    messages = await _drain(queues)
    assert sorted(m.id for m in messages) == sorted(
        publish_task(double, w)["taskId"] for w in workflows
    )
    updates = Counter(r.body["taskId"] for r in double.requests_to("POST", r"^/api/tasks$"))
    assert sum(updates.values()) == 10


async def test_conductor_down_then_back(
    double: ConductorDouble, queues: EventQueues, run_worker: WorkerFactory
) -> None:
    double.inject(502, times=6, method="GET", path="^/api/tasks/poll/")
    workflows = start(double, SINK, 3)
    async with run_worker(queues) as worker:
        await eventually(
            lambda: all(publish_task(double, w)["status"] == "COMPLETED" for w in workflows),
            what="every publish task completed",
        )
        errors = worker.value(
            "conductor_events_worker_polls_total", task_type="event_publish", result="error"
        )
        ready, status = worker.worker.status()
    assert errors == 6
    assert ready, status
    assert len(await _drain(queues)) == 3


async def test_a_task_without_a_sink_fails_with_the_reason(
    double: ConductorDouble, queues: EventQueues, run_worker: WorkerFactory
) -> None:
    double.register_task_def("event_publish", retry_count=0)
    workflow_id = double.start_workflow(WORKFLOW, input={"order": 1})
    unknown = double.start_workflow(WORKFLOW, input={"order": 2, "sink": "nope:q"})
    async with run_worker(queues):
        await eventually(
            lambda: (
                double.workflows[unknown]["status"] == "FAILED"
                and double.workflows[workflow_id]["status"] == "FAILED"
            ),
            what="both workflows failed",
        )
    assert "has no 'sink'" in publish_task(double, workflow_id)["reasonForIncompletion"]
    assert "nope" in publish_task(double, unknown)["reasonForIncompletion"]


async def test_conductor_stopped_and_restarted_mid_batch_publishes_each_task_once(
    double: ConductorDouble, queues: EventQueues, run_worker: WorkerFactory
) -> None:
    # A poll whose answer the stop cuts off leaves its tasks to the response timeout.
    double.register_task_def("event_publish", response_timeout_seconds=3)
    workflows = start(double, SINK, 20)
    # Updates are slow, so the server goes down with updates in flight (some applied, their
    # answers lost) and others refused while it is down.
    double.inject(None, times=20, method="POST", path="^/api/tasks$", delay=0.3)
    async with run_worker(queues) as worker:
        await eventually(lambda: len(double.requests_to("POST", r"^/api/tasks$")) >= 4)
        port = double.port
        await double.stop()
        await asyncio.sleep(1.0)
        await double.start(port)
        await eventually(
            lambda: all(publish_task(double, w)["status"] == "COMPLETED" for w in workflows),
            what="every publish task completed",
        )
        retries = worker.value(
            "conductor_events_worker_update_retries_total", task_type="event_publish"
        )
    assert retries >= 1
    messages = await _drain(queues)
    assert sorted(m.id for m in messages) == sorted(
        publish_task(double, w)["taskId"] for w in workflows
    )
