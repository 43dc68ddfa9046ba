"""The ``local`` queue's publish and consume paths, each next to raw ``sqlite3`` doing the same.

Targets: each figure at least half of its raw baseline's. Every publish here is durable when
it returns (committed in WAL mode with ``synchronous=NORMAL``, as the raw baselines are), and
every consumed message is acked before the next is counted: one ack per message, or, in
``consume-ack-batch``, one ``ack_many`` (one transaction) per claimed batch.
"""

from __future__ import annotations

import asyncio

from bench import raw_sqlite
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
from bench.local_queue import SINK, open_queues, prefill
from bench.payloads import json_payload
from conductor_events.backend import SubscribeOptions
from conductor_events.messages import Message

ORDER = 10
CONSUME_BATCH = 100
"""Messages one claim takes: the raw baseline's batch and the subscription's prefetch."""


def _publish_batches(batch: int) -> Measure:
    def measure(ctx: RunContext) -> Sample:
        return asyncio.run(_publish(ctx, batch))

    return measure


def _publish_single(ctx: RunContext) -> Sample:
    return asyncio.run(_publish(ctx, 1))


async def _publish(ctx: RunContext, batch: int) -> Sample:
    """``publish`` calls of ``batch`` new messages each; every call returns once committed."""
    payload = json_payload(shape=ctx.options.payload)
    async with open_queues(ctx.workdir) as queues:
        await queues.publish(SINK, [Message(payload)])  # opens the file, untimed
        done = 0
        start = asyncio.get_running_loop().time()
        while done < ctx.count and not ctx.expired():
            result = await queues.publish(SINK, [Message(payload) for _ in range(batch)])
            if not result.ok:
                raise BenchError(f"publish refused: {result.failure_summary()}")
            done += batch
        seconds = asyncio.get_running_loop().time() - start
    return Sample(done, seconds)


def _consume(batched: bool) -> Measure:
    def measure(ctx: RunContext) -> Sample:
        return asyncio.run(_consume_async(ctx, batched))

    return measure


async def _consume_async(ctx: RunContext, batched: bool) -> Sample:
    """Receive and ack ``count`` prefilled messages: one ``receive()`` and ``ack()`` per
    message, or ``batched``, one ``receive_batch()`` and ``ack_many()`` per claim."""
    options = SubscribeOptions(max_in_flight=CONSUME_BATCH, prefetch=CONSUME_BATCH)
    async with open_queues(ctx.workdir) as queues:
        await prefill(queues, ctx.count, shape=ctx.options.payload)
        done = 0
        start = asyncio.get_running_loop().time()
        async with await queues.subscribe(SINK, options) as subscription:
            while done < ctx.count and not ctx.expired():
                if batched:
                    deliveries = await subscription.receive_batch(CONSUME_BATCH, timeout=5.0)
                    if deliveries:
                        await subscription.ack_many(deliveries)
                    received = len(deliveries)
                else:
                    delivery = await subscription.receive(timeout=5.0)
                    if delivery is not None:
                        await delivery.ack()
                    received = 0 if delivery is None else 1
                if not received:
                    raise BenchError(f"queue ran dry after {done} of {ctx.count} messages")
                done += received
        seconds = asyncio.get_running_loop().time() - start
    return Sample(done, seconds)


def _raw_batches(batch: int) -> Measure:
    def measure(ctx: RunContext) -> Sample:
        return raw_sqlite.insert_batches(batch, ctx)

    return measure


CASES = [
    *(
        Case(
            backend="local",
            name=f"publish-batch-{batch}",
            description=f"publish() of {batch} messages per call, 1 KiB JSON each",
            metric=THROUGHPUT,
            measure=_publish_batches(batch),
            count=100_000,
            quick_count=5_000,
            baseline=Baseline(
                f"sqlite3 executemany of {batch} inserts in one transaction",
                _raw_batches(batch),
            ),
            target=MinRatio(0.5),
            warmup=2_000,
        )
        for batch in (100, 1000)
    ),
    Case(
        backend="local",
        name="publish-single",
        description="publish() of one message per call, committed when it returns",
        metric=THROUGHPUT,
        measure=_publish_single,
        count=20_000,
        quick_count=2_000,
        baseline=Baseline(
            "sqlite3 insert, one transaction (one commit) per insert",
            raw_sqlite.insert_each_committed,
        ),
        target=MinRatio(0.5),
        warmup=1_000,
    ),
    *(
        Case(
            backend="local",
            name=name,
            description=description,
            metric=THROUGHPUT,
            measure=_consume(batched),
            count=count,
            quick_count=5_000,
            baseline=Baseline(
                f"sqlite3 claim {CONSUME_BATCH} rows (UPDATE ... RETURNING), decode each body, "
                + deletes,
                raw,
            ),
            target=MinRatio(0.5),
            warmup=1_000,
        )
        for name, batched, count, description, deletes, raw in (
            (
                "consume-ack",
                False,
                50_000,
                f"receive() and ack() each message (prefetch {CONSUME_BATCH})",
                "delete each row in its own transaction",
                raw_sqlite.claim_then_delete,
            ),
            (
                "consume-ack-batch",
                True,
                100_000,
                f"receive_batch({CONSUME_BATCH}) and ack_many() (one transaction each)",
                "delete them in one transaction",
                raw_sqlite.claim_then_delete_batch,
            ),
        )
    ),
]
