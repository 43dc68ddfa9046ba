"""The NATS JetStream (``jsm``) plugin next to raw nats-py doing the same work, against a
``nats-server -js`` each measurement starts on 127.0.0.1 (a free port, a fresh file store) and
stops.

Target (issue 15): through the plugin at least 90% of raw nats-py, publishing with acks and
consuming with acks. Both sides use the same 1 KiB JSON payloads and one message id header per
message (``Nats-Msg-Id``, which the plugin always sends: the stream deduplicates by it).

* publish: calls of ``PUBLISH_BATCH`` messages; each call returns once the stream acknowledged
  every message (the plugin's ``publish``; raw: ``publish_async()`` each, then await every
  acknowledgement future);
* consume-ack: ``count`` prefilled messages pulled by a durable consumer, each payload decoded,
  and acked, a batch at a time (the plugin: ``receive_batch()``, then ``ack_many()``; raw:
  ``fetch()``, ``json.loads`` each body, ``ack()`` each). The clock starts at the first
  message on both sides;
* consume-ack-each: the same, one ``receive()`` and ``ack()`` per message, for information.
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
from datetime import timedelta
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

ORDER = 47
PUBLISH_BATCH = 1000
CONSUME_BATCH = 500
MAX_ACK_PENDING = 2 * CONSUME_BATCH
DURABLE = "bench"


def _requires() -> str | None:
    for module, package in (
        ("nats", "nats-py"),
        ("conductor_events_nats", "conductor-events-nats"),
    ):
        if importlib.util.find_spec(module) is None:
            return f"{package} is not installed (pip install -e 'plugins/nats[test]')"
    from conductor_events_nats.testing import find_nats_server

    if find_nats_server() is None:
        return "nats-server is not installed (on PATH, in /usr/sbin, or NATS_SERVER_BIN)"
    return None


@asynccontextmanager
async def _server(ctx: RunContext) -> AsyncIterator[str]:
    from conductor_events_nats.testing import NatsServer

    server = NatsServer(Path(tempfile.mkdtemp(dir=ctx.workdir)) / "store")
    await asyncio.to_thread(server.start)
    try:
        yield server.url
    finally:
        await asyncio.to_thread(server.stop)


def _plugin_client(url: str) -> Any:
    from conductor_events_nats.plugin import connect_jetstream
    from conductor_events_nats.settings import JetStreamSettings

    return connect_jetstream(
        JetStreamSettings(
            enabled=True,
            url=url,
            max_ack_pending=MAX_ACK_PENDING,
            publish_timeout=timedelta(seconds=30),
        )
    )


async def _raw_connection(url: str) -> Any:
    import nats

    return await nats.connect(url)


def _subject() -> str:
    return f"bench-{uuid.uuid4().hex[:10]}"


async def _create_stream(raw: Any, subject: str) -> None:
    from conductor_events_nats.settings import stream_name_for

    await raw.jsm().add_stream(name=stream_name_for(subject), subjects=[subject])


# -- publish -------------------------------------------------------------------------------


def _plugin_publish(ctx: RunContext) -> Sample:
    return asyncio.run(_plugin_publish_async(ctx))


async def _plugin_publish_async(ctx: RunContext) -> Sample:
    from conductor_events.messages import Message

    payloads = [json_payload(i, shape=ctx.options.payload) for i in range(PUBLISH_BATCH)]
    async with _server(ctx) as url:
        subject = _subject()
        client = _plugin_client(url)
        try:
            await client.publish(subject, [Message(payloads[0])])  # connects, creates, untimed
            done = 0
            start = time.perf_counter()
            while done < ctx.count and not ctx.expired():
                batch = payloads[: ctx.count - done]
                result = await client.publish(subject, [Message(p) for p in batch])
                if not result.ok:
                    raise BenchError(f"publish refused: {result.failure_summary()}")
                done += len(batch)
            seconds = time.perf_counter() - start
        finally:
            await client.close()
    return Sample(done, seconds)


def _raw_publish(ctx: RunContext) -> Sample:
    return asyncio.run(_raw_publish_async(ctx))


async def _raw_publish_async(ctx: RunContext) -> Sample:
    payloads = [json_payload(i, shape=ctx.options.payload) for i in range(PUBLISH_BATCH)]
    async with _server(ctx) as url:
        subject = _subject()
        raw = await _raw_connection(url)
        try:
            await _create_stream(raw, subject)
            context = raw.jetstream()
            await context.publish(subject, encode(payloads[0]))  # untimed
            done = 0
            start = time.perf_counter()
            while done < ctx.count and not ctx.expired():
                batch = payloads[: ctx.count - done]
                futures = [
                    await context.publish_async(
                        subject, encode(payload), headers={"Nats-Msg-Id": str(uuid.uuid4())}
                    )
                    for payload in batch
                ]
                await asyncio.gather(*futures)
                done += len(batch)
            seconds = time.perf_counter() - start
        finally:
            await raw.close()
    return Sample(done, seconds)


# -- consume -------------------------------------------------------------------------------


async def _prefill(raw: Any, subject: str, count: int, shape: str) -> None:
    context = raw.jetstream()
    body = encode(json_payload(0, shape=shape))
    for start in range(0, count, PUBLISH_BATCH):
        futures = [
            await context.publish_async(subject, body, headers={"Nats-Msg-Id": str(uuid.uuid4())})
            for _ in range(min(PUBLISH_BATCH, count - start))
        ]
        await asyncio.gather(*futures)


def _plugin_consume(batched: bool) -> Measure:
    def measure(ctx: RunContext) -> Sample:
        return asyncio.run(_plugin_consume_async(ctx, batched))

    return measure


async def _plugin_consume_async(ctx: RunContext, batched: bool) -> Sample:
    from conductor_events.backend import SubscribeOptions

    async with _server(ctx) as url:
        subject = _subject()
        raw = await _raw_connection(url)
        try:
            await _create_stream(raw, subject)
            await _prefill(raw, subject, ctx.count, ctx.options.payload)
        finally:
            await raw.close()
        client = _plugin_client(url)
        options = SubscribeOptions(
            group=DURABLE, max_in_flight=MAX_ACK_PENDING, prefetch=CONSUME_BATCH
        )
        try:
            async with await client.subscribe(subject, options) as subscription:
                sample = await drain(subscription, ctx, batch=CONSUME_BATCH, batched=batched)
        finally:
            await client.close()
    return sample


def _raw_consume(ctx: RunContext) -> Sample:
    return asyncio.run(_raw_consume_async(ctx))


async def _raw_consume_async(ctx: RunContext) -> Sample:
    from nats.errors import TimeoutError as NatsTimeoutError
    from nats.js.api import AckPolicy, ConsumerConfig

    async with _server(ctx) as url:
        subject = _subject()
        raw = await _raw_connection(url)
        try:
            await _create_stream(raw, subject)
            await _prefill(raw, subject, ctx.count, ctx.options.payload)
            context = raw.jetstream()
            pull = await context.pull_subscribe(
                subject,
                durable=DURABLE,
                config=ConsumerConfig(
                    ack_policy=AckPolicy.EXPLICIT, max_ack_pending=MAX_ACK_PENDING
                ),
            )
            done = 0
            start = 0.0
            idle_since = time.perf_counter()
            while done < ctx.count and not ctx.expired():
                try:
                    messages = await pull.fetch(CONSUME_BATCH, timeout=0.1)
                except NatsTimeoutError:
                    if time.perf_counter() - idle_since > 30:
                        raise BenchError(
                            f"stream ran dry after {done} of {ctx.count} messages"
                        ) from None
                    continue
                idle_since = time.perf_counter()
                if done == 0:
                    start = time.perf_counter()
                held = []  # a batch's payloads live until it is acked, as in the plugin
                for message in messages:
                    payload = json.loads(message.data)
                    check_payload(payload)
                    held.append(payload)
                    await message.ack()
                done += len(messages)
                del held, messages
            seconds = time.perf_counter() - start
        finally:
            await raw.close()
    return Sample(done, seconds)


CASES = [
    Case(
        backend="nats",
        name="jsm-publish",
        description=f"publish() of {PUBLISH_BATCH} messages per call, 1 KiB JSON, each acked by "
        "its stream (file storage)",
        metric=THROUGHPUT,
        measure=_plugin_publish,
        count=50_000,
        quick_count=5_000,
        baseline=Baseline(
            f"nats-py publish_async() of {PUBLISH_BATCH} messages with a Nats-Msg-Id, then "
            "await their acks",
            _raw_publish,
        ),
        target=MinRatio(0.9),
        requires=_requires,
    ),
    *(
        Case(
            backend="nats",
            name=name,
            description=description,
            metric=THROUGHPUT,
            measure=_plugin_consume(batched),
            count=50_000,
            quick_count=5_000,
            baseline=Baseline(
                f"nats-py fetch() of up to {CONSUME_BATCH} from a durable pull consumer, "
                "json.loads each body, ack() each",
                _raw_consume,
            ),
            target=target,
            requires=_requires,
        )
        for name, batched, description, target in (
            (
                "jsm-consume-ack",
                True,
                f"receive_batch({CONSUME_BATCH}), read each payload, ack_many(), durable pull "
                "consumer",
                MinRatio(0.9),
            ),
            (
                "jsm-consume-ack-each",
                False,
                "receive() and ack() each message, read each payload, durable pull consumer "
                f"(prefetch {CONSUME_BATCH}); for information",
                None,
            ),
        )
    ),
]
