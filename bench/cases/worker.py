"""``conductor-events worker`` end to end, next to the same publishes done directly.

* ``worker/end-to-end``: the worker loop (:class:`~conductor_events.worker.runner.TaskWorker`,
  as the command runs it: 32 tasks at once, polls of up to 32) against the Conductor API
  double in a process of its own, publishing to the ``local`` queue. The workflows, one
  ``event_publish`` task each with a 1 KiB input, are started before the clock starts; the
  figure is tasks published and updated COMPLETED per second, from the worker's start to the
  last accepted update. Baseline: the same EVENT tasks (same payloads, same sink, 32 at once)
  executed directly with ``execute_event_task``, with no Conductor in the way. Target: at
  least 80% of it.
* ``worker/double-capacity``: what the double itself sustains for the same request pattern
  (batch polls of up to 32, 32 updates in flight) with nothing published, so the end-to-end
  figure can be read against it: when the two are close, the double is the bottleneck and
  the end-to-end figure says little about the worker. The worker's own CPU time per task
  (the bench process runs nothing else meanwhile) is in the end-to-end case's notes, with the
  rate one core could sustain at that cost.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from typing import Any

from bench.framework import THROUGHPUT, Baseline, BenchError, Case, MinRatio, RunContext, Sample
from bench.local_queue import open_queues
from bench.payloads import json_payload

ORDER = 66
TASK_TYPE = "event_publish"
SINK = "local:bench-worker"
CONCURRENCY = 32


def _start_double() -> tuple[subprocess.Popen[str], str]:
    """The Conductor API double in a process of its own, with a workflow whose one task is a
    worker task publishing the workflow's ``order`` to its ``sink``; returns it and its URL."""
    task_input = {"sink": "${workflow.input.sink}", "order": "${workflow.input.order}"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "conductor_events.testing.conductor_double",
            "--workflow",
            f"bench=publish:{TASK_TYPE}",
            "--task-input",
            f"publish={json.dumps(task_input)}",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    url = process.stdout.readline()
    if not url.startswith("http://127.0.0.1:"):
        process.terminate()
        raise BenchError(f"the Conductor double did not start: {url!r}")
    return process, url.strip()


async def _start_workflows(client: Any, count: int, order: dict[str, Any]) -> None:
    """``count`` workflows, 32 start requests at a time (untimed set-up)."""
    for start in range(0, count, CONCURRENCY):
        await asyncio.gather(
            *(
                client.start_workflow({"name": "bench", "input": {"sink": SINK, "order": order}})
                for _ in range(min(CONCURRENCY, count - start))
            )
        )


def _server(url: str) -> Any:
    from conductor_events.handlers.settings import ServerSettings

    return ServerSettings.model_validate({"url": url, "max_connections": CONCURRENCY + 4})


def _end_to_end(ctx: RunContext) -> Sample:
    return asyncio.run(_end_to_end_async(ctx))


async def _end_to_end_async(ctx: RunContext) -> Sample:
    from conductor_events.handlers.client import ConductorClient
    from conductor_events.messages import Message
    from conductor_events.worker.metrics import WorkerMetrics
    from conductor_events.worker.runner import TaskWorker, WorkerOptions

    double, url = await asyncio.to_thread(_start_double)
    try:
        async with ConductorClient(_server(url)) as client, open_queues(ctx.workdir) as queues:
            await _start_workflows(client, ctx.count, json_payload(shape=ctx.options.payload))
            await queues.publish("local:warm-up", [Message({})])  # opens the file, untimed
            metrics = WorkerMetrics()
            stop = threading.Event()
            options = WorkerOptions(
                task_types=(TASK_TYPE,),
                worker_id="bench",
                poll_count=CONCURRENCY,
                poll_timeout=0.1,
                concurrency=CONCURRENCY,
            )
            worker = TaskWorker(queues, client, options, metrics, stop)
            begin = time.perf_counter()
            cpu = time.process_time()
            running = asyncio.ensure_future(worker.run())
            labels = {"task_type": TASK_TYPE, "status": "COMPLETED"}
            done = 0.0
            while done < ctx.count:
                await asyncio.sleep(0.002)
                done = (
                    metrics.registry.get_sample_value(
                        "conductor_events_worker_tasks_updated_total", labels
                    )
                    or 0.0
                )
                if running.done() or ctx.expired():
                    break
            seconds = time.perf_counter() - begin
            cpu = time.process_time() - cpu
            stop.set()
            await running
    finally:
        double.terminate()
        await asyncio.to_thread(double.wait, 10)
    if done < ctx.count and not ctx.expired():
        raise BenchError(f"the worker stopped after {done:.0f} of {ctx.count} tasks")
    per_task = cpu / max(done, 1)
    notes = {
        "worker CPU per task": f"{per_task * 1e6:,.0f} µs (one core's ceiling: "
        f"{1 / per_task if per_task else float('inf'):,.0f} tasks/s)"
    }
    return Sample(int(done), seconds, notes=notes)


def _direct(ctx: RunContext) -> Sample:
    return asyncio.run(_direct_async(ctx))


async def _direct_async(ctx: RunContext) -> Sample:
    """The same EVENT tasks executed directly, 32 at once, with no Conductor."""
    from conductor_events.event_task import EventTask, TaskStatus, execute_event_task
    from conductor_events.messages import Message

    order = json_payload(shape=ctx.options.payload)
    tasks = [
        EventTask(
            sink=SINK,
            input_parameters={"sink": SINK, "order": order},
            workflow_type="bench",
            correlation_id=None,
        )
        for _ in range(ctx.count)
    ]
    failed: list[str] = []
    async with open_queues(ctx.workdir) as queues:
        await queues.publish("local:warm-up", [Message({})])  # opens the file, untimed
        pending = iter(tasks)
        done = 0

        async def lane() -> None:
            nonlocal done
            for task in pending:
                result = await execute_event_task(task, queues)
                if result.status is not TaskStatus.COMPLETED:
                    failed.append(result.reason_for_incompletion or "")
                done += 1
                if ctx.expired():
                    return

        begin = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(CONCURRENCY)))
        seconds = time.perf_counter() - begin
    if failed:
        raise BenchError(f"{len(failed)} EVENT tasks failed: {failed[0]}")
    return Sample(done, seconds)


def _double_capacity(ctx: RunContext) -> Sample:
    return asyncio.run(_double_capacity_async(ctx))


async def _double_capacity_async(ctx: RunContext) -> Sample:
    """Batch polls of up to 32 and 32 updates in flight against the double, nothing
    published: the most the double serves for the worker's request pattern."""
    from conductor_events.handlers.client import ConductorClient

    double, url = await asyncio.to_thread(_start_double)
    try:
        async with ConductorClient(_server(url)) as client:
            await _start_workflows(client, ctx.count, json_payload(shape=ctx.options.payload))
            slots = asyncio.Semaphore(CONCURRENCY)
            updating: set[asyncio.Task[None]] = set()
            done = 0

            async def update(task: dict[str, Any]) -> None:
                nonlocal done
                try:
                    await client.update_task(
                        {
                            "workflowInstanceId": task["workflowInstanceId"],
                            "taskId": task["taskId"],
                            "status": "COMPLETED",
                            "outputData": {**task["inputData"], "event_produced": SINK},
                            "workerId": "bench",
                        }
                    )
                    done += 1
                finally:
                    slots.release()

            begin = time.perf_counter()
            polled = 0
            while polled < ctx.count and not ctx.expired():
                await slots.acquire()
                free = 1
                while free < CONCURRENCY and not slots.locked():
                    await slots.acquire()
                    free += 1
                tasks = await client.poll_tasks(
                    TASK_TYPE, count=free, timeout_ms=100, worker_id="bench"
                )
                for _ in range(free - len(tasks)):
                    slots.release()
                polled += len(tasks)
                for task in tasks:
                    job = asyncio.ensure_future(update(task))
                    updating.add(job)
                    job.add_done_callback(updating.discard)
            if updating:
                await asyncio.wait(list(updating))
            seconds = time.perf_counter() - begin
    finally:
        double.terminate()
        await asyncio.to_thread(double.wait, 10)
    return Sample(done, seconds)


CASES = [
    Case(
        backend="worker",
        name="end-to-end",
        description="worker: poll the Conductor double (own process) -> EVENT publish to the "
        "local queue -> update COMPLETED, 32 tasks at once",
        metric=THROUGHPUT,
        measure=_end_to_end,
        count=5_000,
        quick_count=500,
        baseline=Baseline("execute_event_task, 32 at once, no Conductor", _direct),
        target=MinRatio(0.8),
        repeat=3,
    ),
    Case(
        backend="worker",
        name="double-capacity",
        description="the Conductor double alone: batch polls and updates, 32 in flight, "
        "nothing published (the ceiling of worker/end-to-end)",
        metric=THROUGHPUT,
        measure=_double_capacity,
        count=5_000,
        quick_count=500,
        repeat=3,
    ),
]
