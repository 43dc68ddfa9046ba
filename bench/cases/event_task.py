"""What the EVENT task adds to a publish: ``execute_event_task`` next to a bare client publish.

Both sides publish the same 1 KiB message, one per call, to the same kind of ``local`` queue,
durable when the call returns. The baseline calls the resolved ``QueueClient.publish`` with a
``Message`` built beforehand; the case calls ``execute_event_task`` with an ``EventTask`` built
beforehand (as a workflow engine hands it over), so the difference is the task's own work:
building the payload with the system fields, resolving the sink (a cached lookup), the
message, the output and the ``TaskResult``. Target: under 50 µs extra per task.
"""

from __future__ import annotations

import asyncio
import uuid

from bench.framework import LATENCY_US, Baseline, BenchError, Case, MaxExtra, RunContext, Sample
from bench.local_queue import open_queues
from bench.payloads import PAYLOAD_BYTES, encode, json_payload
from conductor_events.event_task import EventTask, TaskStatus, execute_event_task
from conductor_events.messages import Message

ORDER = 20
SINK = "local:bench-events"


def _tasks(count: int, shape: str) -> list[EventTask]:
    """Tasks whose published payload (inputs plus system fields) is about 1 KiB."""

    def task(inputs: dict[str, object]) -> EventTask:
        return EventTask(
            sink=SINK,
            input_parameters=inputs,
            workflow_type="bench-workflow",
            workflow_version=1,
            correlation_id=str(uuid.uuid4()),
        )

    system_bytes = len(encode(task({}).payload()))
    inputs = json_payload(
        size=PAYLOAD_BYTES - system_bytes + 1, shape=shape
    )  # one comma joins the two
    return [task(inputs) for _ in range(count)]


def _event_task(ctx: RunContext) -> Sample:
    return asyncio.run(_event_task_async(ctx))


async def _event_task_async(ctx: RunContext) -> Sample:
    tasks = _tasks(ctx.count, ctx.options.payload)
    async with open_queues(ctx.workdir) as queues:
        await execute_event_task(
            _tasks(1, ctx.options.payload)[0], queues
        )  # opens the file, untimed
        results = []
        start = asyncio.get_running_loop().time()
        for task in tasks:
            results.append(await execute_event_task(task, queues))
            if ctx.expired():
                break
        seconds = asyncio.get_running_loop().time() - start
    failed = [r for r in results if r.status is not TaskStatus.COMPLETED]
    if failed:
        raise BenchError(f"{len(failed)} EVENT tasks failed: {failed[0].reason_for_incompletion}")
    return Sample(len(results), seconds)


def _client_publish(ctx: RunContext) -> Sample:
    return asyncio.run(_client_publish_async(ctx))


async def _client_publish_async(ctx: RunContext) -> Sample:
    messages = [
        Message(payload=t.payload(), id=t.task_id) for t in _tasks(ctx.count, ctx.options.payload)
    ]
    async with open_queues(ctx.workdir) as queues:
        resolved = queues.resolve(SINK)
        client, location = resolved.client, resolved.location
        await client.publish(location, [Message(payload={})])  # opens the file, untimed
        done = 0
        start = asyncio.get_running_loop().time()
        for message in messages:
            result = await client.publish(location, (message,))
            if not result.ok:
                raise BenchError(f"publish refused: {result.failure_summary()}")
            done += 1
            if ctx.expired():
                break
        seconds = asyncio.get_running_loop().time() - start
    return Sample(done, seconds)


CASES = [
    Case(
        backend="local",
        name="event-task",
        description="execute_event_task() per task, vs publishing the same message directly",
        metric=LATENCY_US,
        measure=_event_task,
        count=10_000,
        quick_count=1_000,
        baseline=Baseline(
            "QueueClient.publish of the same message, one per call (no EVENT task)",
            _client_publish,
        ),
        target=MaxExtra(50.0),
        warmup=1_000,
    ),
]
