"""``python -m bench.instructions``: instructions per consumed message, counted by callgrind.

Wall-clock ratios on a shared machine move by several percent between runs; an instruction
count does not. This runs one consume loop in a child process under ``valgrind
--tool=callgrind`` (with ``PYTHONHASHSEED=0``) twice, over a smaller and a larger prefilled
count, and prints the difference of the two totals divided by the difference of the counts:
what one message costs the client process, with the interpreter's start-up, the imports and
the subscription's set-up taken out. The broker (moto's server, tansu) runs outside valgrind
and the queue is filled natively beforehand, so neither is counted. System calls are not
counted either: a commit's write, a thread's wake-up and the kernel's network stack are
outside the figure, so it is the share of a message's cost that code changes move.

Examples::

    python -m bench.instructions local batch          # receive_batch(100) + ack_many()
    python -m bench.instructions local raw-each       # raw sqlite3, one delete per message
    python -m bench.instructions sqs batch --counts 50 250
    python -m bench.instructions kafka each --counts 4000 24000

Paths: ``batch`` (``receive_batch`` and ``ack_many``), ``each`` (``receive`` and ``ack``;
on SQS ten concurrent handlers, as in the ``consume-cpu-each`` case), ``raw-batch`` and
``raw-each`` (the client library doing the same work; on SQS and Kafka both name the one raw
loop of the wall-clock case). The subscriptions' yield to the event loop (every 5 ms) is
stretched by valgrind's slowdown (Kafka) or turned off (local, SQS), so that it stays as rare
per message as it is natively. To compare two versions of the code, run the command from each
checkout with ``PYTHONPATH`` pointing at its sources.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.payloads import encode, json_payload

BACKENDS = ("local", "sqs", "kafka")
PATHS = ("batch", "each", "raw-batch", "raw-each")
DEFAULT_COUNTS = {"local": (1000, 5000), "sqs": (50, 250), "kafka": (4000, 24000)}
LOCAL_BATCH = 100
SQS_BATCH = 10
KAFKA_PREFETCH = 500
SLOWDOWN = 50
"""About how many times slower valgrind runs this code; stretches the 5 ms yield interval."""


# -- the consume loops, run under callgrind -----------------------------------------------


async def _local(path: str, count: int, target: str) -> int:
    if path.startswith("raw"):
        return _local_raw(path == "raw-batch", count, Path(target))
    from bench.local_queue import SINK, open_queues
    from conductor_events.backend import SubscribeOptions

    options = SubscribeOptions(max_in_flight=LOCAL_BATCH, prefetch=LOCAL_BATCH)
    done = 0
    async with (
        open_queues(Path(target)) as queues,
        await queues.subscribe(SINK, options) as subscription,
    ):
        subscription.yield_interval = 1e9  # no other task here needs the loop
        while done < count:
            if path == "batch":
                deliveries = await subscription.receive_batch(LOCAL_BATCH, timeout=5.0)
                await subscription.ack_many(deliveries)
                received = len(deliveries)
            else:
                delivery = await subscription.receive(timeout=5.0)
                received = 0 if delivery is None else 1
                if delivery is not None:
                    await delivery.ack()
            if not received:
                raise SystemExit(f"the queue ran dry after {done} of {count} messages")
            done += received
    return done


def _local_raw(batched: bool, count: int, workdir: Path) -> int:
    from bench.raw_sqlite import CLAIM, DELETE, QUEUE

    db = sqlite3.connect(workdir / "queue.db", isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    done = 0
    while done < count:
        receipt = random.getrandbits(62)
        now = time.time()
        db.execute("BEGIN IMMEDIATE")
        rows = db.execute(CLAIM, (now + 60.0, receipt, QUEUE, now, LOCAL_BATCH)).fetchall()
        db.execute("COMMIT")
        if not rows:
            raise SystemExit(f"the queue ran dry after {done} of {count} messages")
        payloads = [json.loads(row[2]) for row in rows]  # held until acked, as a consumer's
        if batched:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(DELETE, [(row[0], receipt) for row in rows])
            db.execute("COMMIT")
        else:
            for row in rows:
                db.execute(DELETE, (row[0], receipt))
        done += len(payloads)
    db.close()
    return done


async def _sqs(path: str, count: int, target: str) -> int:
    endpoint, name = target.split(" ")
    if path.startswith("raw"):
        return _sqs_raw(count, endpoint, name)
    from bench.cases.sqs import open_queues
    from conductor_events.backend import SubscribeOptions

    options = SubscribeOptions(max_in_flight=SQS_BATCH, prefetch=SQS_BATCH, drain_timeout=1)
    done = 0
    async with open_queues(endpoint) as queues:
        subscription = await queues.subscribe(f"sqs:{name}", options)
        subscription.yield_interval = 1e9
        if path == "batch":
            while done < count:
                deliveries = await subscription.receive_batch(SQS_BATCH, timeout=5.0)
                if not deliveries:
                    raise SystemExit(f"the queue ran dry after {done} of {count} messages")
                _check(d.message.payload for d in deliveries)
                await subscription.ack_many(deliveries)
                done += len(deliveries)
        else:
            finished = asyncio.Event()

            async def handler() -> None:
                nonlocal done
                while not finished.is_set():
                    delivery = await subscription.receive(timeout=5.0)
                    if delivery is None:
                        return
                    _check([delivery.message.payload])
                    await delivery.ack()
                    done += 1
                    if done >= count:
                        finished.set()

            handlers = [asyncio.create_task(handler()) for _ in range(SQS_BATCH)]
            await finished.wait()
            await subscription.close()
            await asyncio.gather(*handlers)
        await subscription.close()
    return done


def _sqs_raw(count: int, endpoint: str, name: str) -> int:
    from conductor_events_sqs.wire import SYSTEM_ATTRIBUTES

    from bench.cases.sqs import raw_client

    sqs = raw_client(endpoint)
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    done = 0
    while done < count:
        response = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=SQS_BATCH,
            WaitTimeSeconds=1,
            VisibilityTimeout=60,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=list(SYSTEM_ATTRIBUTES),  # type: ignore[arg-type]
        )
        messages = response.get("Messages", [])
        if not messages:
            raise SystemExit(f"the queue ran dry after {done} of {count} messages")
        _check([json.loads(message["Body"]) for message in messages])
        entries: Any = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ]
        sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        done += len(messages)
    return done


async def _kafka(path: str, count: int, target: str) -> int:
    bootstrap, topic = target.split(" ")
    if path.startswith("raw"):
        return await _kafka_raw(count, bootstrap, topic)
    from conductor_events_kafka.plugin import connect
    from conductor_events_kafka.settings import KafkaSettings
    from conductor_events_kafka.testing import TANSU_PRODUCER

    from conductor_events.backend import SubscribeOptions

    client = connect(
        KafkaSettings(
            enabled=True,
            bootstrap_servers=bootstrap,
            producer=dict(TANSU_PRODUCER),
            # heartbeats must keep up under valgrind: the usual test settings would not
            consumer={"session.timeout.ms": "30000", "heartbeat.interval.ms": "1000"},
        )
    )
    options = SubscribeOptions(
        group=topic, max_in_flight=KAFKA_PREFETCH * 2, prefetch=KAFKA_PREFETCH
    )
    done = 0
    try:
        async with await client.subscribe(topic, options) as subscription:
            subscription.yield_interval *= SLOWDOWN
            while done < count:
                if path == "batch":
                    deliveries = await subscription.receive_batch(KAFKA_PREFETCH, timeout=60.0)
                else:
                    delivery = await subscription.receive(timeout=60.0)
                    deliveries = [] if delivery is None else [delivery]
                if not deliveries:
                    raise SystemExit(f"the topic ran dry after {done} of {count} records")
                _check(d.message.payload for d in deliveries)
                if path == "batch":
                    await subscription.ack_many(deliveries)
                else:
                    await deliveries[0].ack()
                done += len(deliveries)
                del deliveries  # settled: let it go before the next fetch, as raw does
    finally:
        await client.close()
    return done


async def _kafka_raw(count: int, bootstrap: str, topic: str) -> int:
    from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=topic,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=30000,
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    done = 0
    try:
        while done < count:
            batches = await consumer.getmany(timeout_ms=100, max_records=KAFKA_PREFETCH)
            held = [json.loads(r.value) for records in batches.values() for r in records]
            _check(held)  # a batch's payloads live until it is committed, as in the plugin
            if held:
                await consumer.commit()
            done += len(held)
            del held, batches
    finally:
        await consumer.stop()
    return done


def _check(payloads: Any) -> None:
    for payload in payloads:
        if not isinstance(payload, dict):
            raise SystemExit(f"a payload did not decode to a JSON object: {payload!r:.60}")


LOOPS: dict[str, Callable[[str, int, str], Any]] = {"local": _local, "sqs": _sqs, "kafka": _kafka}


# -- set-up outside valgrind, and the two counted runs ------------------------------------


async def _fill_local(workdir: Path, count: int) -> str:
    from bench.local_queue import open_queues, prefill

    async with open_queues(workdir) as queues:
        await prefill(queues, count, shape="order")
    return str(workdir)


def _fill_sqs(endpoint: str, count: int) -> str:
    from bench.cases.sqs import raw_client

    sqs = raw_client(endpoint)
    name = f"count-{uuid.uuid4().hex[:10]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    body = encode(json_payload(shape="order")).decode()
    for start in range(0, count, SQS_BATCH):
        entries: Any = [
            {"Id": str(i), "MessageBody": body} for i in range(min(SQS_BATCH, count - start))
        ]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    return f"{endpoint} {name}"


async def _fill_kafka(bootstrap: str, count: int) -> str:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]

    topic = f"count-{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        body = encode(json_payload(0, shape="order"))
        for start in range(0, count, 1000):
            futures = [
                await producer.send(topic, body, key=str(uuid.uuid4()).encode())
                for _ in range(min(1000, count - start))
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return f"{bootstrap} {topic}"


def _counted(backend: str, path: str, count: int, target: str, out: Path) -> int:
    """Total instructions of one child process consuming ``count`` messages."""
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        "-m",
        "bench.instructions",
        "--consume",
        backend,
        path,
        str(count),
        target,
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{backend} {path} {count}: the counted run failed:\n{result.stderr}")
    totals = re.search(r"^totals:\s+(\d+)", out.read_text(), re.MULTILINE)
    if totals is None:
        raise SystemExit(f"{out}: no totals line")
    return int(totals.group(1))


def _measure(backend: str, path: str, counts: Sequence[int], workdir: Path) -> list[int]:
    totals = []
    if backend == "local":
        for count in counts:
            queue = workdir / f"queue-{count}"
            queue.mkdir()
            target = asyncio.run(_fill_local(queue, count))
            totals.append(_counted(backend, path, count, target, workdir / f"out-{count}"))
    elif backend == "sqs":
        from bench.cases.sqs import moto_server

        with moto_server() as endpoint:
            for count in counts:
                target = _fill_sqs(endpoint, count)
                totals.append(_counted(backend, path, count, target, workdir / f"out-{count}"))
    else:
        from conductor_events_kafka.testing import Tansu

        broker = Tansu.in_memory(workdir / "tansu.log")
        broker.start()
        try:
            for count in counts:
                target = asyncio.run(_fill_kafka(broker.bootstrap, count))
                totals.append(_counted(backend, path, count, target, workdir / f"out-{count}"))
        finally:
            broker.stop()
    return totals


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--consume"]:
        backend, path, count, target = args[1:5]
        done = asyncio.run(LOOPS[backend](path, int(count), target))
        return 0 if done == int(count) else 1
    parser = argparse.ArgumentParser(
        prog="python -m bench.instructions",
        description="Instructions per consumed message (callgrind), the set-up taken out.",
    )
    parser.add_argument("backend", choices=BACKENDS)
    parser.add_argument("path", choices=PATHS)
    parser.add_argument(
        "--counts", type=int, nargs=2, metavar=("SMALL", "LARGE"), help="messages per run"
    )
    options = parser.parse_args(args)
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed")
    small, large = options.counts or DEFAULT_COUNTS[options.backend]
    if not 0 < small < large:
        parser.error("--counts: SMALL must be positive and less than LARGE")
    with tempfile.TemporaryDirectory() as workdir:
        first, second = _measure(options.backend, options.path, (small, large), Path(workdir))
    per_message = (second - first) / (large - small)
    print(
        f"{options.backend} {options.path}: {per_message:,.0f} instructions per message "
        f"({first:,} for {small:,}, {second:,} for {large:,})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
