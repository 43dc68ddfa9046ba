"""The AMQP plugin next to raw aio-pika doing the same work, against the RabbitMQ on
127.0.0.1:5672 (guest/guest), in the same run.

Target (issue 15): through the plugin at least 90% of raw aio-pika, publishing with publisher
confirms and consuming with manual acks. Both sides use the same 1 KiB JSON payloads, a
durable classic queue and persistent messages.

* publish: calls of ``PUBLISH_BATCH`` messages; each call returns once the broker confirmed
  every message of it (the plugin's ``publish``; raw: ``publish()`` each message with
  ``mandatory`` on a confirming channel, all of a batch awaited together);
* consume-ack: ``count`` prefilled messages received, each payload read, and acked, a batch at
  a time (the plugin: ``receive_batch()``, then ``ack_many()``; raw: a consumer callback
  filling an ``asyncio.Queue``, ``json.loads`` of each body, ``ack()`` each), both with a
  prefetch of ``2 * CONSUME_BATCH``. The clock starts at the first message;
* consume-ack-each: the plugin one ``receive()`` and ``ack()`` per message, for information.

Each measurement uses a queue of its own and deletes it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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

ORDER = 46
HOST = "127.0.0.1"
PORT = 5672
PUBLISH_BATCH = 1000
CONSUME_BATCH = 500


def _requires() -> str | None:
    for module, package in (("aio_pika", "aio-pika"), ("conductor_events_amqp", "")):
        if importlib.util.find_spec(module) is None:
            name = package or "conductor-events-amqp"
            return f"{name} is not installed (pip install -e 'plugins/amqp[test]')"
    try:
        socket.create_connection((HOST, PORT), timeout=1).close()
    except OSError:
        return f"RabbitMQ is not listening on {HOST}:{PORT}"
    return None


@asynccontextmanager
async def _queue() -> AsyncIterator[str]:
    """A fresh queue name; the queue (declared by whoever uses it) is deleted afterwards."""
    import aio_pika

    name = f"bench-amqp-{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        connection = await aio_pika.connect(host=HOST, port=PORT)
        try:
            channel = await connection.channel()
            await channel.queue_delete(name)
        finally:
            await connection.close()


def _plugin_client() -> Any:
    from conductor_events_amqp.plugin import connect_queue
    from conductor_events_amqp.settings import AmqpSettings

    return connect_queue(AmqpSettings(enabled=True, hosts=HOST, port=PORT))


# -- publish -------------------------------------------------------------------------------


def _plugin_publish(ctx: RunContext) -> Sample:
    return asyncio.run(_plugin_publish_async(ctx))


async def _plugin_publish_async(ctx: RunContext) -> Sample:
    from conductor_events.messages import Message

    payloads = [json_payload(i, shape=ctx.options.payload) for i in range(PUBLISH_BATCH)]
    async with _queue() as queue:
        client = _plugin_client()
        try:
            await client.publish(queue, [Message(payloads[0])])  # connects, untimed
            done = 0
            start = time.perf_counter()
            while done < ctx.count and not ctx.expired():
                batch = payloads[: ctx.count - done]
                result = await client.publish(queue, [Message(p) for p in batch])
                if not result.ok:
                    raise BenchError(f"publish refused: {result.failure_summary()}")
                done += len(batch)
            seconds = time.perf_counter() - start
        finally:
            await client.close()
    return Sample(done, seconds)


async def _raw_channel() -> tuple[Any, Any]:
    import aio_pika

    connection = await aio_pika.connect(host=HOST, port=PORT)
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    return connection, channel


def _raw_message(payload: object) -> Any:
    import aio_pika

    return aio_pika.Message(
        encode(payload),
        content_type="application/json",
        content_encoding="UTF-8",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=str(uuid.uuid4()),  # the plugin's message id
        timestamp=time.time(),
    )


def _raw_publish(ctx: RunContext) -> Sample:
    return asyncio.run(_raw_publish_async(ctx))


async def _raw_publish_async(ctx: RunContext) -> Sample:
    payloads = [json_payload(i, shape=ctx.options.payload) for i in range(PUBLISH_BATCH)]
    async with _queue() as queue:
        connection, channel = await _raw_channel()
        try:
            await channel.declare_queue(queue, durable=True)
            exchange = channel.default_exchange
            await exchange.publish(_raw_message(payloads[0]), queue)  # untimed
            done = 0
            start = time.perf_counter()
            while done < ctx.count and not ctx.expired():
                batch = payloads[: ctx.count - done]
                await asyncio.gather(
                    *(exchange.publish(_raw_message(p), queue, mandatory=True) for p in batch)
                )
                done += len(batch)
            seconds = time.perf_counter() - start
        finally:
            await connection.close()
    return Sample(done, seconds)


# -- consume -------------------------------------------------------------------------------


async def _prefill(queue: str, count: int, shape: str) -> None:
    connection, channel = await _raw_channel()
    try:
        await channel.declare_queue(queue, durable=True, arguments={"x-queue-type": "classic"})
        payload = json_payload(0, shape=shape)
        for start in range(0, count, PUBLISH_BATCH):
            await asyncio.gather(
                *(
                    channel.default_exchange.publish(_raw_message(payload), queue)
                    for _ in range(min(PUBLISH_BATCH, count - start))
                )
            )
    finally:
        await connection.close()


def _plugin_consume(batched: bool) -> Measure:
    def measure(ctx: RunContext) -> Sample:
        return asyncio.run(_plugin_consume_async(ctx, batched))

    return measure


async def _plugin_consume_async(ctx: RunContext, batched: bool) -> Sample:
    from conductor_events.backend import SubscribeOptions

    async with _queue() as queue:
        await _prefill(queue, ctx.count, ctx.options.payload)
        client = _plugin_client()
        options = SubscribeOptions(max_in_flight=CONSUME_BATCH, prefetch=CONSUME_BATCH)
        try:
            async with await client.subscribe(queue, options) as subscription:
                sample = await drain(subscription, ctx, batch=CONSUME_BATCH, batched=batched)
        finally:
            await client.close()
        await _delete_dead_letter_queue(queue)
    return sample


async def _delete_dead_letter_queue(queue: str) -> None:
    import aio_pika

    connection = await aio_pika.connect(host=HOST, port=PORT)
    try:
        channel = await connection.channel()
        await channel.queue_delete(f"{queue}.dlq")
    finally:
        await connection.close()


def _raw_consume(ctx: RunContext) -> Sample:
    return asyncio.run(_raw_consume_async(ctx))


async def _raw_consume_async(ctx: RunContext) -> Sample:
    async with _queue() as queue:
        await _prefill(queue, ctx.count, ctx.options.payload)
        connection, channel = await _raw_channel()
        try:
            await channel.set_qos(prefetch_count=2 * CONSUME_BATCH)
            declared = await channel.declare_queue(
                queue, durable=True, arguments={"x-queue-type": "classic"}
            )
            arrived: asyncio.Queue[Any] = asyncio.Queue()

            async def on_message(message: Any) -> None:
                arrived.put_nowait(message)

            await declared.consume(on_message, no_ack=False)
            done = 0
            start = 0.0
            while done < ctx.count and not ctx.expired():
                try:
                    message = await asyncio.wait_for(arrived.get(), 10.0)
                except TimeoutError:
                    raise BenchError(f"queue ran dry after {done} of {ctx.count}") from None
                held = [message]
                while len(held) < CONSUME_BATCH and not arrived.empty():
                    held.append(arrived.get_nowait())
                payloads = [json.loads(m.body) for m in held]
                for payload in payloads:
                    check_payload(payload)
                if done == 0:
                    start = time.perf_counter()
                for m in held:
                    await m.ack()
                done += len(held)
                del held, payloads
            seconds = time.perf_counter() - start
        finally:
            await connection.close()
    return Sample(done, seconds)


CASES = [
    Case(
        backend="amqp",
        name="publish",
        description=(
            f"publish() of {PUBLISH_BATCH} messages per call, 1 KiB JSON, publisher confirms, "
            "durable queue, persistent messages"
        ),
        metric=THROUGHPUT,
        measure=_plugin_publish,
        count=50_000,
        quick_count=5_000,
        baseline=Baseline(
            f"aio-pika publish() of {PUBLISH_BATCH} messages with confirms, awaited together",
            _raw_publish,
        ),
        target=MinRatio(0.9),
        requires=_requires,
    ),
    *(
        Case(
            backend="amqp",
            name=name,
            description=description,
            metric=THROUGHPUT,
            measure=_plugin_consume(batched),
            count=50_000,
            quick_count=5_000,
            baseline=Baseline(
                f"aio-pika consumer (prefetch {2 * CONSUME_BATCH}), json.loads each body, "
                "ack() each",
                _raw_consume,
            ),
            target=target,
            requires=_requires,
        )
        for name, batched, description, target in (
            (
                "consume-ack",
                True,
                f"receive_batch({CONSUME_BATCH}), read each payload, ack_many()",
                MinRatio(0.9),
            ),
            (
                "consume-ack-each",
                False,
                "receive() and ack() each message, read each payload; for information",
                None,
            ),
        )
    ),
]
