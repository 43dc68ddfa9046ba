"""Consumers dying and groups rebalancing: every message is still processed, and the group's
commits end exactly at the end of each partition (nothing skipped, nothing committed twice
past an unprocessed record)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conductor_events_kafka.client import KafkaQueueClient
from conductor_events_kafka.testing import TANSU_CONSUMER, TANSU_PRODUCER, Tansu
from conductor_events_kafka.testing import unique_name as unique

from conductor_events.backend import Delivery, SubscribeOptions, Subscription
from conductor_events.messages import Message

MakeClient = Callable[..., KafkaQueueClient]

WORKER = textwrap.dedent(
    """
    import asyncio, json, sys
    from conductor_events.backend import SubscribeOptions
    from conductor_events_kafka.plugin import connect
    from conductor_events_kafka.settings import KafkaSettings

    args = json.loads(sys.argv[1])

    async def main():
        client = connect(KafkaSettings(**args["settings"]))
        sub = await client.subscribe(args["topic"], SubscribeOptions(group=args["group"]))
        with open(args["out"], "a", encoding="utf-8") as out:
            while True:
                delivery = await sub.receive(timeout=1)
                if delivery is None:
                    continue
                await asyncio.sleep(0.01)  # the handler's work
                out.write(delivery.message.id + "\\n")
                out.flush()  # recorded as processed before the ack can commit it
                await delivery.ack()

    asyncio.run(main())
    """
)


async def end_offsets(tansu: Tansu, topic: str) -> dict[int, int]:
    """The next offset of each partition, found by reading everything (tansu's ListOffsets
    for 'latest' is wrong, so end_offsets() cannot be used)."""
    from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=tansu.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    ends: dict[int, int] = {}
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            if not batch:
                return ends
            for tp, records in batch.items():
                ends[tp.partition] = records[-1].offset + 1
    finally:
        await consumer.stop()


async def committed(tansu: Tansu, topic: str, group: str) -> dict[int, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=tansu.bootstrap, group_id=group)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = consumer.partitions_for_topic(topic) or set()
        found = {p: await consumer.committed(TopicPartition(topic, p)) for p in partitions}
        return {p: offset for p, offset in found.items() if offset is not None and offset >= 0}
    finally:
        await consumer.stop()


async def consume_until(
    subscriptions: list[Subscription],
    expected: set[str],
    processed: dict[str, int],
    limit: float,
    progress: tuple[int, asyncio.Event] | None = None,
) -> None:
    """Each subscription acks what it receives (concurrently, out of order) until every
    expected id was processed."""
    deadline = time.monotonic() + limit

    async def handle(delivery: Delivery, index: int) -> None:
        await asyncio.sleep(0.005 * (hash(delivery.message.id) % 5))  # out-of-order acks
        processed[delivery.message.id] = index
        if progress is not None and len(processed) >= progress[0]:
            progress[1].set()
        await delivery.ack()

    async def run(sub: Subscription, index: int) -> None:
        tasks: set[asyncio.Task[None]] = set()
        while not expected <= set(processed) and time.monotonic() < deadline:
            delivery = await sub.receive(timeout=0.2)
            if delivery is not None:
                task = asyncio.create_task(handle(delivery, index))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)

    await asyncio.gather(*(run(sub, i) for i, sub in enumerate(subscriptions)))
    missing = expected - set(processed)
    assert not missing, f"{len(missing)} messages never processed, e.g. {sorted(missing)[:3]}"


def processed_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def publish(client: Any, topic: str, count: int) -> list[Message]:
    messages = [Message(payload={"n": n}, key=f"key-{n % 8}") for n in range(count)]
    for start in range(0, count, 50):
        result = await client.publish(topic, messages[start : start + 50])
        assert result.ok, result.failure_summary()
    return messages


async def test_sigkilled_consumer_loses_nothing(
    tansu: Tansu, make_client: MakeClient, tmp_path: Path
) -> None:
    client = make_client()
    topic, group = unique(), unique("g")
    messages = await publish(client, topic, 300)
    out = tmp_path / "processed.txt"
    args = {
        "topic": topic,
        "group": group,
        "out": str(out),
        "settings": {
            "enabled": True,
            "bootstrap_servers": tansu.bootstrap,
            "producer": TANSU_PRODUCER,
            "consumer": TANSU_CONSUMER,
            "commit_interval": "10ms",
        },
    }
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WORKER,
        json.dumps(args),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while len(processed_lines(out)) < 60:
            assert worker.returncode is None, f"the worker exited with {worker.returncode}"
            assert time.monotonic() < deadline, "the worker processed too little within 30s"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(worker.wait(), 0.05)
        os.kill(worker.pid, signal.SIGKILL)
        await asyncio.wait_for(worker.wait(), 10)
    finally:
        if worker.returncode is None:
            worker.kill()
            await asyncio.wait_for(worker.wait(), 10)
    before = set(processed_lines(out))
    expected = {m.id for m in messages}
    assert 60 <= len(before) < len(expected), "the kill was not mid-stream"
    processed: dict[str, int] = dict.fromkeys(before, -1)
    async with await client.subscribe(topic, SubscribeOptions(group=group)) as sub:
        await consume_until([sub], expected, processed, limit=60)
    assert set(processed) == expected


async def test_rebalance_mid_stream_loses_nothing_and_commits_to_the_end(
    tansu: Tansu, make_client: MakeClient
) -> None:
    """A second member joins while the first is busy: partitions move (in-flight deliveries
    of the moved partitions are redelivered to their new owner), every message is processed,
    and the group's commits end exactly at each partition's end."""
    client = make_client()
    topic, group = unique(), unique("g")
    messages = await publish(client, topic, 600)
    expected = {m.id for m in messages}
    processed: dict[str, int] = {}
    first = await client.subscribe(topic, SubscribeOptions(group=group, max_in_flight=4))
    second: Subscription | None = None
    try:
        halfway = asyncio.Event()
        one = asyncio.create_task(
            consume_until([first], expected, processed, limit=60, progress=(50, halfway))
        )
        await asyncio.wait_for(halfway.wait(), 30)
        second = await client.subscribe(topic, SubscribeOptions(group=group, max_in_flight=4))
        assert len(processed) < len(expected), "the second member did not join mid-stream"
        two = asyncio.create_task(consume_until([second], expected, processed, limit=60))
        await asyncio.gather(one, two)
    finally:
        await first.close()
        if second is not None:
            await second.close()
    ends = await end_offsets(tansu, topic)
    assert await committed(tansu, topic, group) == ends
