"""``conductor-events serve`` end to end.

* ``serve/end-to-end``: the service running as its own process on the ``local`` queue with
  one handler (a trivial condition, one ``complete_task``) against the Conductor API double in
  another process. Timed from the first publish to the last message acked, as the service's
  ``/metrics`` counts it; messages are published in batches by this process while the service
  consumes. The p99 handling latency (receive to settlement) is read from the service's
  histogram and reported as the bucket it falls in. Target: 1,000 messages/s.

No raw baseline: the figure is checked against the issue's absolute target.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.cases.handlers import MinRate, _start_double
from bench.framework import BenchError, Case, Metric, RunContext, Sample
from conductor_events.testing.servers import free_port

ORDER = 65
EVENT = "local:bench-serve"
CONCURRENCY = 32


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text: str = response.read().decode()
    return text


def _value(text: str, prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _p99(text: str) -> str:
    """The upper bound of the histogram bucket holding the 99th percentile."""
    name = "conductor_events_handling_seconds_bucket{"
    buckets = []
    for line in text.splitlines():
        if line.startswith(name) and f'event="{EVENT}"' in line:
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(bound), float(line.rsplit(" ", 1)[1])))
    if not buckets:
        return "n/a"
    buckets.sort()
    total = buckets[-1][1]
    for upper, cumulative in buckets:
        if cumulative >= 0.99 * total:
            return f"<= {upper * 1000:g} ms"
    return "n/a"


def _wait_ready(port: int, log: Path, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"serve exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError("serve did not become ready")


def _start_serve(properties: Path, handlers: Path, log: Path, port: int) -> subprocess.Popen[bytes]:
    """The service as an operator runs it: default log level, HTTP endpoint on."""
    with log.open("wb") as log_file:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "conductor_events",
                "serve",
                "-c",
                str(properties),
                "--handlers",
                str(handlers),
                "--http",
                f"127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            env={**os.environ, "CONDUCTOR_EVENTS_PLUGINS": "local,handlers"},
        )


def _end_to_end(ctx: RunContext) -> Sample:
    return asyncio.run(_end_to_end_async(ctx))


async def _end_to_end_async(ctx: RunContext) -> Sample:
    from bench.local_queue import open_queues
    from conductor_events.messages import Message
    from conductor_events_handlers.client import ConductorClient
    from conductor_events_handlers.settings import ServerSettings

    handler = {
        "name": "bench-serve",
        "event": EVENT,
        "condition": "$.kind == 'order'",
        "active": True,
        "actions": [
            {
                "action": "complete_task",
                "complete_task": {
                    "workflowId": "${workflowInstanceId}",
                    "taskRefName": "task_1_ref",
                    "output": {"n": "${n}"},
                },
            }
        ],
    }
    handlers = ctx.workdir / "serve-handlers.json"
    handlers.write_text(json.dumps(handler))
    double, url = await asyncio.to_thread(_start_double)
    properties = ctx.workdir / "serve.properties"
    properties.write_text(
        f"conductor.server.url={url}\n"
        f"conductor.event-queues.local.path={ctx.workdir / 'queue.db'}\n"
        f"conductor.event-handlers.executions.path={ctx.workdir / 'serve-executions.db'}\n"
        f"conductor.event-handlers.concurrency={CONCURRENCY}\n"
    )
    log = ctx.workdir / "serve.log"
    serve: subprocess.Popen[bytes] | None = None
    try:
        server = ServerSettings.model_validate({"url": url, "max_connections": 8})
        async with ConductorClient(server) as client:
            workflow_ids = [
                await client.start_workflow({"name": "bench", "version": 1})
                for _ in range(ctx.count)
            ]
        port = free_port()
        serve = await asyncio.to_thread(_start_serve, properties, handlers, log, port)
        await asyncio.to_thread(_wait_ready, port, log, serve)
        acked_line = (
            f'conductor_events_messages_settled_total{{disposition="acked",event="{EVENT}"}}'
        )
        async with open_queues(ctx.workdir) as queues:
            begin = time.perf_counter()
            for start in range(0, ctx.count, 500):
                batch = [
                    Message({"kind": "order", "n": start + i, "workflowInstanceId": w})
                    for i, w in enumerate(workflow_ids[start : start + 500])
                ]
                result = await queues.publish(EVENT, batch)
                if not result.ok:
                    raise BenchError(f"publish refused: {result.failure_summary()}")
            while True:
                text = await asyncio.to_thread(_metrics, port)
                acked = _value(text, acked_line)
                if acked >= ctx.count:
                    break
                if serve.poll() is not None or ctx.expired():
                    raise BenchError(f"{acked:.0f} of {ctx.count} messages acked in time")
                await asyncio.sleep(0.01)
            seconds = time.perf_counter() - begin
        p99 = _p99(text)
        serve.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(serve.wait, 30)
        if code != 0:
            raise BenchError(f"serve exited with {code} on SIGTERM")
    finally:
        if serve is not None and serve.poll() is None:
            serve.kill()
            serve.wait()
        double.terminate()
        await asyncio.to_thread(double.wait, 10)
    return Sample(ctx.count, seconds, notes={"p99 handling": p99})


CASES = [
    Case(
        backend="serve",
        name="end-to-end",
        description="serve process: local queue -> condition -> complete_task on the Conductor "
        "double (own process) -> record -> ack",
        metric=Metric("msg/s", higher_is_better=True, per_op_scale=None),
        measure=_end_to_end,
        count=5_000,
        quick_count=500,
        target=MinRate(1_000),
        repeat=3,
    ),
]
