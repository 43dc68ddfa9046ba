"""The plugin side of the broker consume cases: drain a prefilled location through a
subscription, reading every payload and acking, a batch or one message at a time.

The AMQP, NATS and Kafka cases measure the same thing against different brokers, so they share
this loop; only the subscription and the batch size differ. The first delivery is received and
acked before the clock starts, so connection set-up and the broker's first fetch stay out of the
figure (the raw baselines start their clocks at their first message too).
"""

from __future__ import annotations

import time

from bench.framework import BenchError, RunContext, Sample
from conductor_events.backend import Subscription


def check_payload(payload: object) -> None:
    """Fail the case when a message did not arrive as the JSON object that was published."""
    if not isinstance(payload, dict):
        raise BenchError(f"a message did not decode to a JSON object: {payload!r:.60}")


async def drain(
    subscription: Subscription, ctx: RunContext, *, batch: int, batched: bool
) -> Sample:
    """Receive, check and ack ``ctx.count`` messages: ``receive_batch(batch)`` and
    ``ack_many()`` when ``batched``, else ``receive()`` and ``ack()`` each."""
    first = await subscription.receive(timeout=30.0)
    if first is None:
        raise BenchError("nothing arrived within 30s")
    check_payload(first.message.payload)
    await first.ack()
    done = 1
    start = time.perf_counter()
    while done < ctx.count and not ctx.expired():
        if batched:
            deliveries = await subscription.receive_batch(batch, timeout=10.0)
        else:
            delivery = await subscription.receive(timeout=10.0)
            deliveries = [] if delivery is None else [delivery]
        if not deliveries:
            raise BenchError(f"ran dry after {done} of {ctx.count} messages")
        for delivery in deliveries:
            check_payload(delivery.message.payload)
        if batched:
            await subscription.ack_many(deliveries)
        else:
            await deliveries[0].ack()
        done += len(deliveries)
        del deliveries  # settled: let it go before the next fetch, as the raw loops do
    return Sample(done, time.perf_counter() - start)
