"""The SQS plugin next to raw boto3 doing the same batched calls, against moto's server.

moto is the bottleneck here (it is CPU-bound and scans a queue on every request), so msg/s
mostly measures moto; what the plugin costs shows in client CPU per 1,000 messages (the CPU
time of this process, all its threads, during the timed part) and in requests per message.
Targets (issue 4): client CPU per message within 1.2x of raw boto3 doing the same batched
calls; N single-message EVENT tasks published concurrently cost at least 5x fewer requests
than one SendMessage each.

Both sides make the same calls with the same 1 KiB JSON payloads: batches of 10 entries
(SendMessageBatch, ReceiveMessage, DeleteMessageBatch), the raw side calling boto3 directly in
a loop. "Same calls" includes what the plugin puts on the wire: each entry carries the message
id in one message attribute (``publish-batch-cpu-bare`` compares with bodies alone), and
receives ask for the same attributes. The consume cases read with ``receive_batch(10)`` and
settle with ``ack_many()``, the plugin's counterpart of one ReceiveMessage and one
DeleteMessageBatch; ``consume-cpu-each`` shows the per-message path (ten handlers, each
``receive()`` and ``ack()``) for comparison. Each measurement starts its own ``moto_server`` on
127.0.0.1 (fresh, empty queues) and stops it.
Queues stay a few hundred messages deep at most: moto slows down with depth.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.framework import (
    THROUGHPUT,
    Baseline,
    BenchError,
    Case,
    Measure,
    Metric,
    RunContext,
    Sample,
    Target,
    Verdict,
)
from bench.payloads import PAYLOAD_BYTES, encode, json_payload

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

    from conductor_events.backend import Subscription
    from conductor_events.event_queues import EventQueues

ORDER = 40
BATCH = 10
SYSTEM_ATTRIBUTES: Any = [
    "ApproximateReceiveCount",
    "SentTimestamp",
    "MessageGroupId",
    "MessageDeduplicationId",
    "DeadLetterQueueSourceArn",
]
"""What the plugin's receive asks for; the raw consumer asks for the same."""
QUEUE_DEPTH = 100
"""Messages per queue: moto scans a queue on every request, so a deep queue makes every call
slow, and a slow call costs an asyncio client some CPU while it waits (thread hand-offs) that a
synchronous loop does not pay. Cases spread their messages over queues of this depth."""


def _queues_needed(count: int) -> int:
    return max(1, -(-count // QUEUE_DEPTH))


REGION = "us-east-1"
CPU_PER_1K = Metric("CPU ms/1k msg", higher_is_better=False, per_op_scale=None, decimals=1)
REQUESTS_PER_100 = Metric("requests/100 msg", higher_is_better=False, per_op_scale=None)


class MaxRatio(Target):
    """At most this multiple of the raw baseline's figure (for costs)."""

    def __init__(self, ratio: float) -> None:
        self.ratio = ratio

    def describe(self, metric: Metric) -> str:
        return f"<= {self.ratio:g}x raw"

    def check(self, value: float, baseline: float | None) -> Verdict:
        if not baseline:
            return Verdict(None, "no baseline")
        ratio = value / baseline
        return Verdict(ratio <= self.ratio, f"{ratio:.2f}x raw")


class MaxFigure(Target):
    """At most this figure, whatever the baseline."""

    def __init__(self, limit: float) -> None:
        self.limit = limit

    def describe(self, metric: Metric) -> str:
        return f"<= {self.limit:g} {metric.unit}"

    def check(self, value: float, baseline: float | None) -> Verdict:
        detail = f"raw: {baseline:g}" if baseline is not None else ""
        return Verdict(value <= self.limit, detail)


def _requires() -> str | None:
    for module in ("boto3", "conductor_events_sqs", "moto"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -e 'plugins/sqs[test]')"
    if _moto_command() is None:
        return "moto_server is not installed (pip install 'moto[server]')"
    return None


def _moto_command() -> str | None:
    beside = Path(sys.executable).with_name("moto_server")
    return str(beside) if beside.exists() else shutil.which("moto_server")


@contextmanager
def moto_server() -> Iterator[str]:
    """A fresh moto server on 127.0.0.1 for one measurement; yields its endpoint."""
    command = _moto_command()
    if command is None:
        raise BenchError("moto_server is not installed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    process = subprocess.Popen(
        [command, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise BenchError("moto_server did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def raw_client(endpoint: str) -> SQSClient:
    import boto3

    return boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )


def open_queues(endpoint: str) -> EventQueues:
    """EventQueues with the SQS plugin alone, configured as an operator would."""
    import conductor_events_sqs.plugin

    from conductor_events.config import load_configuration
    from conductor_events.event_queues import EventQueues
    from conductor_events.plugins import PluginHost

    plugins = PluginHost(entry_points=[], environ={})
    plugins.add_plugin(conductor_events_sqs.plugin, "sqs")
    environ = {
        "CONDUCTOR_EVENTQUEUES_SQS_ENABLED": "true",
        "CONDUCTOR_EVENTQUEUES_SQS_ENDPOINT": endpoint,
        "CONDUCTOR_EVENTQUEUES_SQS_REGION": REGION,
        "CONDUCTOR_EVENTQUEUES_SQS_ACCESSKEYID": "bench",
        "CONDUCTOR_EVENTQUEUES_SQS_SECRETACCESSKEY": "bench",
        "CONDUCTOR_EVENTQUEUES_SQS_BATCHSIZE": str(BATCH),
        "CONDUCTOR_EVENTQUEUES_SQS_WAITTIME": "1s",
    }
    config = load_configuration([], plugins, environ)
    config.raise_for_errors()
    return EventQueues(config, plugins)


class Clock:
    """Wall and process CPU time of the timed part."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    @contextmanager
    def timing(self) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu


def _sample(kind: str, done: int, clock: Clock, requests: int, notes: dict[str, str]) -> Sample:
    """One figure per metric kind from the same work: throughput, CPU, or requests."""
    figures = {
        "rate": None,
        "cpu": clock.cpu / max(done, 1) * 1e6,
        "requests": requests / max(done, 1) * 100,
    }
    notes = {
        **notes,
        "msg/s": f"{done / clock.wall:,.0f}" if clock.wall else "-",
        "client CPU ms/1k msg": f"{clock.cpu / max(done, 1) * 1e6:,.1f}",
        "requests/100 msg": f"{requests / max(done, 1) * 100:.1f}",
    }
    return Sample(done, clock.wall, value=figures[kind], notes=notes)


# -- publish -------------------------------------------------------------------------------


def _plugin_publish(kind: str) -> Measure:
    def measure(ctx: RunContext) -> Sample:
        with moto_server() as endpoint:
            return asyncio.run(_plugin_publish_async(ctx, endpoint, kind))

    return measure


async def _plugin_publish_async(ctx: RunContext, endpoint: str, kind: str) -> Sample:
    from conductor_events_sqs.client import SqsQueueClient

    from conductor_events.messages import Message

    payload = json_payload(shape=ctx.options.payload)
    run = uuid.uuid4().hex[:8]
    sinks = [f"sqs:bench-{run}-{n}" for n in range(_queues_needed(ctx.count))]
    clock = Clock()
    async with open_queues(endpoint) as queues:
        client = queues.resolve(sinks[0]).client
        assert isinstance(client, SqsQueueClient)
        for sink in sinks:
            await client.queue(queues.resolve(sink).location)  # creates the queues, untimed
        before = client.requests.by_operation["send_message_batch"]
        done = 0
        with clock.timing():
            while done < ctx.count and not ctx.expired():
                batch = [Message(payload) for _ in range(BATCH)]
                result = await queues.publish(sinks[done // QUEUE_DEPTH], batch)
                if not result.ok:
                    raise BenchError(f"publish refused: {result.failure_summary()}")
                done += len(batch)
        requests = client.requests.by_operation["send_message_batch"] - before
    return _sample(kind, done, clock, requests, {})


def _raw_publish(kind: str, *, with_ids: bool = True) -> Measure:
    """SendMessageBatch of 10 in a loop. ``with_ids``: each entry carries the message id in
    the ``conductor-events`` attribute as the plugin's do, so both send the same calls; without
    it, bodies alone (what the id costs shows as the difference)."""

    def measure(ctx: RunContext) -> Sample:
        with moto_server() as endpoint:
            sqs = raw_client(endpoint)
            run = uuid.uuid4().hex[:8]
            urls = [
                sqs.create_queue(QueueName=f"bench-{run}-{n}")["QueueUrl"]
                for n in range(_queues_needed(ctx.count))
            ]
            payload = json_payload(shape=ctx.options.payload)
            clock = Clock()
            done = requests = 0
            with clock.timing():
                while done < ctx.count and not ctx.expired():
                    url = urls[done // QUEUE_DEPTH]
                    entries: Any = [
                        {"Id": str(i), "MessageBody": encode(payload).decode()}
                        for i in range(BATCH)
                    ]
                    if with_ids:
                        for entry in entries:
                            meta = json.dumps({"id": str(uuid.uuid4())}, separators=(",", ":"))
                            entry["MessageAttributes"] = {
                                "conductor-events": {"DataType": "String", "StringValue": meta}
                            }
                    response = sqs.send_message_batch(QueueUrl=url, Entries=entries)
                    requests += 1
                    if response.get("Failed"):
                        raise BenchError(f"raw publish refused: {response['Failed']}")
                    done += BATCH
            return _sample(kind, done, clock, requests, {})

    return measure


# -- EVENT tasks, auto-batched ------------------------------------------------------------


def _event_tasks(ctx: RunContext) -> Sample:
    with moto_server() as endpoint:
        return asyncio.run(_event_tasks_async(ctx, endpoint))


async def _event_tasks_async(ctx: RunContext, endpoint: str) -> Sample:
    """``count`` EVENT tasks executed concurrently, each publishing one message."""
    from conductor_events_sqs.client import SqsQueueClient

    from conductor_events.event_task import EventTask, TaskStatus, execute_event_task

    sink = f"sqs:bench-events-{uuid.uuid4().hex[:8]}"
    inputs = json_payload(size=PAYLOAD_BYTES - 200, shape=ctx.options.payload)
    tasks = [
        EventTask(sink=sink, input_parameters=inputs, workflow_type="bench", workflow_version=1)
        for _ in range(ctx.count)
    ]
    clock = Clock()
    async with open_queues(endpoint) as queues:
        warm = EventTask(sink=sink, input_parameters={})
        await execute_event_task(warm, queues)  # creates the queue, untimed
        client = queues.resolve(sink).client
        assert isinstance(client, SqsQueueClient)
        before = client.requests.by_operation["send_message_batch"]
        with clock.timing():
            results = await asyncio.gather(*(execute_event_task(t, queues) for t in tasks))
        failed = [r for r in results if r.status is not TaskStatus.COMPLETED]
        if failed:
            raise BenchError(
                f"{len(failed)} EVENT tasks failed: {failed[0].reason_for_incompletion}"
            )
        requests = client.requests.by_operation["send_message_batch"] - before
    return _sample("requests", len(tasks), clock, requests, {})


def _raw_single_sends(ctx: RunContext) -> Sample:
    """What publishing one SendMessage per EVENT costs: ``count`` requests."""
    with moto_server() as endpoint:
        sqs = raw_client(endpoint)
        url = sqs.create_queue(QueueName=f"bench-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        body = encode(json_payload(shape=ctx.options.payload)).decode()
        clock = Clock()
        done = 0
        with clock.timing():
            while done < ctx.count and not ctx.expired():
                sqs.send_message(QueueUrl=url, MessageBody=body)
                done += 1
        return _sample("requests", done, clock, done, {})


# -- consume ------------------------------------------------------------------------------


def _prefill(sqs: SQSClient, url: str, count: int, shape: str) -> None:
    body = encode(json_payload(shape=shape)).decode()
    for start in range(0, count, BATCH):
        entries: Any = [
            {"Id": str(i), "MessageBody": body} for i in range(min(BATCH, count - start))
        ]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)


def _prefilled_queues(sqs: SQSClient, count: int, shape: str) -> list[str]:
    """Queues of ``QUEUE_DEPTH`` messages holding ``count`` in all; their names."""
    run = uuid.uuid4().hex[:8]
    names = []
    for n in range(_queues_needed(count)):
        name = f"bench-{run}-{n}"
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        _prefill(sqs, url, min(QUEUE_DEPTH, count - n * QUEUE_DEPTH), shape)
        names.append(name)
    return names


def _plugin_consume(kind: str, *, batched: bool = True) -> Measure:
    def measure(ctx: RunContext) -> Sample:
        with moto_server() as endpoint:
            names = _prefilled_queues(raw_client(endpoint), ctx.count, ctx.options.payload)
            return asyncio.run(_plugin_consume_async(ctx, endpoint, names, kind, batched))

    return measure


async def _plugin_consume_async(
    ctx: RunContext, endpoint: str, names: list[str], kind: str, batched: bool
) -> Sample:
    """Queue after queue: ``receive_batch(10)`` and ``ack_many`` (one ReceiveMessage and one
    DeleteMessageBatch per 10, as the raw loop), or, not ``batched``, ten handlers each
    calling ``receive()`` and ``ack()`` (receives of 10, acks batched by the plugin)."""
    from conductor_events_sqs.client import SqsQueueClient

    from conductor_events.backend import SubscribeOptions

    options = SubscribeOptions(max_in_flight=BATCH, prefetch=BATCH, drain_timeout=1)
    clock = Clock()
    done = 0
    async with open_queues(endpoint) as queues:
        # subscriptions resolve their queues (URL, redrive policy) here, untimed
        subscriptions = [await queues.subscribe(f"sqs:{name}", options) for name in names]
        client = queues.resolve(f"sqs:{names[0]}").client
        assert isinstance(client, SqsQueueClient)
        before = client.requests.total
        drain = _drain_in_batches if batched else _drain_with_handlers
        with clock.timing():
            for index, subscription in enumerate(subscriptions):
                expected = min(QUEUE_DEPTH, ctx.count - index * QUEUE_DEPTH)
                done += await drain(ctx, subscription, expected)
                if ctx.expired():
                    break
        requests = client.requests.total - before
        for subscription in subscriptions:
            await subscription.close()
    return _sample(kind, done, clock, requests, {})


async def _drain_in_batches(ctx: RunContext, subscription: Subscription, expected: int) -> int:
    consumed = 0
    while consumed < expected and not ctx.expired():
        deliveries = await subscription.receive_batch(BATCH, timeout=5.0)
        if not deliveries:
            raise BenchError(f"queue ran dry after {consumed} of {expected} messages")
        for delivery in deliveries:
            _check_payload(delivery.message.payload)
        await subscription.ack_many(deliveries)
        consumed += len(deliveries)
    await subscription.close()
    return consumed


async def _drain_with_handlers(ctx: RunContext, subscription: Subscription, expected: int) -> int:
    finished = asyncio.Event()
    consumed = 0

    async def handler() -> None:
        nonlocal consumed
        while not finished.is_set():
            delivery = await subscription.receive(timeout=5.0)
            if delivery is None:
                if not finished.is_set():
                    finished.set()
                    raise BenchError(f"queue ran dry after {consumed} of {expected} messages")
                return
            _check_payload(delivery.message.payload)
            await delivery.ack()
            consumed += 1
            if consumed >= expected or ctx.expired():
                finished.set()

    handlers = [asyncio.create_task(handler()) for _ in range(BATCH)]
    await finished.wait()
    await subscription.close()  # pending receives return None, the handlers end
    await asyncio.gather(*handlers)
    return consumed


def _check_payload(payload: object) -> None:
    if not isinstance(payload, dict):
        raise BenchError("payload did not decode")


def _raw_consume(kind: str) -> Measure:
    def measure(ctx: RunContext) -> Sample:
        with moto_server() as endpoint:
            sqs = raw_client(endpoint)
            names = _prefilled_queues(sqs, ctx.count, ctx.options.payload)
            urls = [sqs.get_queue_url(QueueName=name)["QueueUrl"] for name in names]
            clock = Clock()
            done = requests = 0
            with clock.timing():
                while done < ctx.count and not ctx.expired():
                    url = urls[done // QUEUE_DEPTH]
                    response = sqs.receive_message(
                        QueueUrl=url,
                        MaxNumberOfMessages=BATCH,
                        WaitTimeSeconds=1,
                        VisibilityTimeout=60,
                        MessageAttributeNames=["All"],
                        MessageSystemAttributeNames=SYSTEM_ATTRIBUTES,
                    )
                    requests += 1
                    messages = response.get("Messages", [])
                    if not messages:
                        raise BenchError(f"queue ran dry after {done} of {ctx.count} messages")
                    held = [json.loads(message["Body"]) for message in messages]
                    for payload in held:  # held until deleted, as the plugin's are
                        _check_payload(payload)
                    entries: Any = [
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(messages)
                    ]
                    sqs.delete_message_batch(QueueUrl=url, Entries=entries)
                    requests += 1
                    done += len(messages)
            return _sample(kind, done, clock, requests, {})

    return measure


CASES = [
    Case(
        backend="sqs",
        name="publish-batch",
        description="publish 10 messages per call (SendMessageBatch) vs raw boto3, msg/s",
        metric=THROUGHPUT,
        measure=_plugin_publish("rate"),
        baseline=Baseline("boto3 send_message_batch", _raw_publish("rate")),
        count=1000,
        quick_count=100,
        repeat=3,
        requires=_requires,
    ),
    Case(
        backend="sqs",
        name="publish-batch-cpu",
        description="client CPU per 1,000 messages published in batches of 10 vs raw boto3",
        metric=CPU_PER_1K,
        measure=_plugin_publish("cpu"),
        baseline=Baseline("boto3 send_message_batch", _raw_publish("cpu")),
        target=MaxRatio(1.2),
        count=1000,
        quick_count=100,
        repeat=3,
        requires=_requires,
    ),
    Case(
        backend="sqs",
        name="publish-batch-cpu-bare",
        description="client CPU per 1,000 messages vs raw boto3 sending bodies only (no "
        "message ids): what carrying the id attribute adds, for information",
        metric=CPU_PER_1K,
        measure=_plugin_publish("cpu"),
        baseline=Baseline(
            "boto3 send_message_batch, bodies only", _raw_publish("cpu", with_ids=False)
        ),
        count=1000,
        quick_count=100,
        repeat=3,
        requires=_requires,
    ),
    Case(
        backend="sqs",
        name="event-tasks-requests",
        description="N concurrent single-message EVENT tasks, auto-batched: requests per "
        "100 messages vs one SendMessage each",
        metric=REQUESTS_PER_100,
        measure=_event_tasks,
        baseline=Baseline("boto3 send_message per message", _raw_single_sends),
        target=MaxFigure(20),
        count=500,
        quick_count=100,
        repeat=1,
        requires=_requires,
    ),
    *(
        Case(
            backend="sqs",
            name=name,
            description=description,
            metric=metric,
            measure=_plugin_consume(kind, batched=batched),
            baseline=Baseline("boto3 receive_message + delete_message_batch", _raw_consume(kind)),
            target=target,
            count=300,
            quick_count=100,
            repeat=3,
            requires=_requires,
        )
        for name, kind, batched, metric, target, description in (
            (
                "consume",
                "rate",
                True,
                THROUGHPUT,
                None,
                "receive_batch(10) and ack_many() every message vs raw boto3 receive + "
                "delete_message_batch, msg/s",
            ),
            (
                "consume-cpu",
                "cpu",
                True,
                CPU_PER_1K,
                MaxRatio(1.2),
                "client CPU per 1,000 messages, receive_batch(10) and ack_many() vs raw boto3",
            ),
            (
                "consume-cpu-each",
                "cpu",
                False,
                CPU_PER_1K,
                None,
                "client CPU per 1,000 messages, ten handlers calling receive() and ack() vs "
                "raw boto3; for information",
            ),
        )
    ),
]
