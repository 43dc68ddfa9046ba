"""``conductor-events worker`` end to end, next to the same publishes done directly.

* ``worker/end-to-end``: the worker loop
  (:class:`~conductor_events_handlers.worker.runner.TaskWorker`, as the command runs it: 32
  tasks at once, polls of up to 32) against the Conductor API double in a process of its own,
  publishing to the ``local`` queue. The workflows, one ``event_publish`` task each with a 1
  KiB input, are started before the clock starts; the
  figure is tasks published and updated COMPLETED per second, from the worker's start to the
  last accepted update. Baseline: the same EVENT tasks (same payloads, same sink, 32 at once)
  executed directly with ``execute_event_task``, with no Conductor in the way. Target: at
  least 80% of it.
* ``worker/double-capacity``: what the double itself sustains for the same request pattern
  (batch polls of up to 32, 32 updates in flight) with nothing published, so the end-to-end
  figure can be read against it: when the two are close, the double is the bottleneck and
  the end-to-end figure says little about the worker. The driver writes and reads HTTP/1.1 by
  hand on 33 kept-alive connections (one polling, 32 updating): an aiohttp client needs more
  CPU per request than the double does to answer it, so with one the figure was the driver's
  limit rather than the double's.

Both cases note each process's CPU time per task (the bench process runs nothing else
meanwhile; the double's is read from ``/proc``, so only on Linux), with the rate one core could
sustain at that cost: CPU time varies far less than wall-clock rates on a shared machine.
"""

from __future__ import annotations

import asyncio
import json
import os
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
            "conductor_events_handlers.testing.conductor_double",
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


def _process_cpu(pid: int) -> float | None:
    """CPU seconds (user and system) process ``pid`` used so far, from ``/proc`` (Linux), or
    ``None`` where that cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _cpu_delta(pid: int, start: float | None) -> float | None:
    now = _process_cpu(pid)
    return None if now is None or start is None else now - start


def _cpu_note(seconds: float | None, tasks: float) -> str | None:
    """CPU per task and the rate one core could sustain at that cost."""
    if seconds is None or tasks < 1:
        return None
    per_task = seconds / tasks
    ceiling = f"{1 / per_task:,.0f}" if per_task else "unbounded"
    return f"{per_task * 1e6:,.0f} µs (one core's ceiling: {ceiling} tasks/s)"


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
    from conductor_events_handlers.settings import ServerSettings

    return ServerSettings.model_validate({"url": url, "max_connections": CONCURRENCY + 4})


def _end_to_end(ctx: RunContext) -> Sample:
    return asyncio.run(_end_to_end_async(ctx))


async def _end_to_end_async(ctx: RunContext) -> Sample:
    from conductor_events.messages import Message
    from conductor_events_handlers.client import ConductorClient
    from conductor_events_handlers.worker.metrics import WorkerMetrics
    from conductor_events_handlers.worker.runner import TaskWorker, WorkerOptions

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
            double_cpu = _process_cpu(double.pid)
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
            double_cpu = _cpu_delta(double.pid, double_cpu)
            stop.set()
            await running
    finally:
        double.terminate()
        await asyncio.to_thread(double.wait, 10)
    if done < ctx.count and not ctx.expired():
        raise BenchError(f"the worker stopped after {done:.0f} of {ctx.count} tasks")
    notes = {
        name: note
        for name, note in (
            ("worker CPU per task", _cpu_note(cpu, done)),
            ("double CPU per task", _cpu_note(double_cpu, done)),
        )
        if note is not None
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


class _Connection:
    """One kept-alive HTTP/1.1 connection to the double, written and read by hand: the
    capacity case's driver must cost less than the double, or it measures itself (an
    aiohttp client needs more CPU per request than the double does to answer it)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> _Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def request(self, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
        head = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode("latin-1") + b"\r\n" + body)
        lines = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
        answer = await self.reader.readexactly(length) if length else b""
        return int(lines[0].split(" ", 2)[1]), answer

    def close(self) -> None:
        self.writer.close()


async def _double_capacity_async(ctx: RunContext) -> Sample:
    """Batch polls of up to 32 and 32 updates in flight against the double, nothing
    published: the most the double serves for the worker's request pattern."""
    from urllib.parse import urlsplit

    from conductor_events_handlers.client import ConductorClient

    double, url = await asyncio.to_thread(_start_double)
    connections: list[_Connection] = []
    try:
        async with ConductorClient(_server(url)) as client:
            await _start_workflows(client, ctx.count, json_payload(shape=ctx.options.payload))
        port = urlsplit(url).port or 80
        base = urlsplit(url).path
        connections = [await _Connection.open(port) for _ in range(CONCURRENCY + 1)]
        poller, idle = connections[0], list(connections[1:])
        slots = asyncio.Semaphore(CONCURRENCY)
        updating: set[asyncio.Task[None]] = set()
        refused: list[str] = []
        done = 0

        async def update(task: dict[str, Any]) -> None:
            nonlocal done
            connection = idle.pop()
            try:
                result = {
                    "workflowInstanceId": task["workflowInstanceId"],
                    "taskId": task["taskId"],
                    "status": "COMPLETED",
                    "outputData": {**task["inputData"], "event_produced": SINK},
                    "workerId": "bench",
                }
                status, answer = await connection.request(
                    "POST", f"{base}/tasks", json.dumps(result).encode()
                )
                if status == 200:
                    done += 1
                else:
                    refused.append(f"HTTP {status}: {answer[:200]!r}")
            finally:
                idle.append(connection)
                slots.release()

        double_cpu = _process_cpu(double.pid)
        cpu = time.process_time()
        begin = time.perf_counter()
        polled = 0
        while polled < ctx.count and not ctx.expired() and not refused:
            await slots.acquire()
            free = 1
            while free < CONCURRENCY and not slots.locked():
                await slots.acquire()
                free += 1
            status, answer = await poller.request(
                "GET",
                f"{base}/tasks/poll/batch/{TASK_TYPE}?count={free}&timeout=100&workerid=bench",
            )
            if status != 200:
                raise BenchError(f"a poll of the double answered HTTP {status}: {answer[:200]!r}")
            tasks = json.loads(answer)
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
        cpu = time.process_time() - cpu
        double_cpu = _cpu_delta(double.pid, double_cpu)
    finally:
        for connection in connections:
            connection.close()
        double.terminate()
        await asyncio.to_thread(double.wait, 10)
    if refused:
        raise BenchError(f"{len(refused)} updates refused by the double: {refused[0]}")
    notes = {
        name: note
        for name, note in (
            ("double CPU per task", _cpu_note(double_cpu, done)),
            ("driver CPU per task", _cpu_note(cpu, done)),
        )
        if note is not None
    }
    return Sample(done, seconds, notes=notes)


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
        "nothing published, from a hand-written HTTP/1.1 driver (the ceiling of "
        "worker/end-to-end)",
        metric=THROUGHPUT,
        measure=_double_capacity,
        count=5_000,
        quick_count=500,
        repeat=3,
    ),
]
