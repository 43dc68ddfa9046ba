"""Offset commits keep up with acks while a large backlog is consumed.

A consumer working through records that are already fetched never has to wait for the broker,
so unless receiving lets the event loop run other tasks now and then, the background commit
task (and aiokafka's heartbeat) would not run until the fetched backlog is gone: the committed
offset would stay where it was, a crash would replay the whole backlog, and a stretch longer
than the session timeout would get the member evicted by a broker that enforces it (tansu is
lenient there, so these tests show the commits, not an eviction). These tests consume a backlog that
arrives in one fetch, with a handler doing synchronous work (it never awaits anything that
suspends), and check the group's committed offset from outside the consuming event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from conductor_events_kafka.client import KafkaQueueClient
from conductor_events_kafka.consume import KafkaSubscription
from conductor_events_kafka.testing import TANSU_CONSUMER, TANSU_PRODUCER, Tansu
from conductor_events_kafka.testing import unique_name as unique

from conductor_events.backend import SubscribeOptions
from conductor_events.messages import Message

MakeClient = Callable[..., KafkaQueueClient]
T = TypeVar("T")

WAIT = 15.0
HANDLER_WORK = 0.0005
"""Seconds of synchronous work per record: a handler that computes without awaiting."""


async def create_topic(tansu: Tansu, topic: str) -> None:
    """One partition, created before publishing (a single consumer owns all of it)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]

    admin = AIOKafkaAdminClient(bootstrap_servers=tansu.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()


async def publish_backlog(client: KafkaQueueClient, topic: str, count: int) -> list[str]:
    """``count`` small records (together well under one fetch's byte limit), their ids in
    offset order."""
    messages = [Message(payload={"n": n, "pad": "x" * 100}) for n in range(count)]
    for start in range(0, count, 500):
        result = await client.publish(topic, messages[start : start + 500])
        assert result.ok, result.failure_summary()
    return [m.id for m in messages]


class CommittedReader:
    """Reads the group's committed offset of partition 0 on a thread with its own event loop.

    ``read()`` blocks its caller's thread: called from the consuming loop, nothing else on that
    loop runs meanwhile. An ``await`` of the read on the consuming loop would suspend the
    consumer and let the commit task run, which is exactly what the consumer alone must do.
    """

    def __init__(self, bootstrap: str, topic: str, group: str) -> None:
        self._bootstrap, self._topic, self._group = bootstrap, topic, group
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._consumer: Any = self._run(self._start())

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(WAIT)

    async def _start(self) -> Any:
        from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]

        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, group_id=self._group)
        await consumer.start()
        return consumer

    async def _committed(self) -> int:
        from aiokafka import TopicPartition

        offset = await self._consumer.committed(TopicPartition(self._topic, 0))
        return 0 if offset is None or offset < 0 else int(offset)

    def read(self) -> int:
        return self._run(self._committed())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._run(self._consumer.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(WAIT)
        self._loop.close()


async def test_committed_offset_follows_acks_while_a_fetched_backlog_is_consumed(
    tansu: Tansu, make_client: MakeClient
) -> None:
    """The whole backlog arrives in one fetch; the committed offset read at three quarters of
    it covers at least what was acked at one quarter (before the fix it stayed at 0 until the
    close), the close commits the rest, and no record comes twice (the member kept its
    partition throughout)."""
    client = make_client(commit_interval="20ms")
    topic, group = unique(), unique("g")
    await create_topic(tansu, topic)
    total = 3000
    ids = await publish_backlog(client, topic, total)
    quarter, three_quarters = total // 4, 3 * total // 4
    observed: dict[int, int] = {}
    received: Counter[str] = Counter()
    reader = CommittedReader(tansu.bootstrap, topic, group)
    try:
        options = SubscribeOptions(group=group, prefetch=100, max_in_flight=100)
        async with await client.subscribe(topic, options) as sub:
            assert isinstance(sub, KafkaSubscription)
            acked = 0
            while acked < total:
                delivery = await sub.receive(timeout=WAIT)
                assert delivery is not None, f"nothing arrived after {acked} of {total} records"
                received[delivery.message.id] += 1
                time.sleep(HANDLER_WORK)  # noqa: ASYNC251 - a handler computing, never awaiting
                await delivery.ack()
                acked += 1
                if acked in (quarter, three_quarters):
                    observed[acked] = reader.read()
        at_end = reader.read()
    finally:
        reader.close()
    assert observed[three_quarters] >= quarter, (
        f"committed offset {observed[three_quarters]} after {three_quarters} of {total} acks "
        f"(it was {observed[quarter]} after {quarter}): commits do not follow acks"
    )
    assert at_end == total, "the close commits the rest"
    assert set(received) == set(ids)
    again = {message_id: n for message_id, n in received.items() if n > 1}
    assert not again, f"{len(again)} records delivered twice: the member lost its partition"


WORKER = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from conductor_events.backend import SubscribeOptions
    from conductor_events_kafka.plugin import connect
    from conductor_events_kafka.settings import KafkaSettings

    args = json.loads(sys.argv[1])

    async def main():
        client = connect(KafkaSettings(**args["settings"]))
        options = SubscribeOptions(group=args["group"], prefetch=args["prefetch"])
        sub = await client.subscribe(args["topic"], options)
        with open(args["out"], "a", encoding="utf-8") as out:
            while True:
                delivery = await sub.receive(timeout=1)
                if delivery is None:
                    continue
                time.sleep(args["work"])  # the handler's work, without awaiting
                out.write(delivery.message.id + "\\n")
                out.flush()  # recorded as processed before the ack can commit it
                await delivery.ack()

    asyncio.run(main())
    """
)


def processed_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def run_worker_until(args: dict[str, Any], out: Path, distinct: int) -> None:
    """Start a consumer process and SIGKILL it once ``out`` holds ``distinct`` record ids."""
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WORKER,
        json.dumps(args),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while len(set(processed_lines(out))) < distinct:
            assert worker.returncode is None, f"the worker exited with {worker.returncode}"
            assert time.monotonic() < deadline, f"fewer than {distinct} records processed in 60s"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(worker.wait(), 0.02)
        os.kill(worker.pid, signal.SIGKILL)
        await asyncio.wait_for(worker.wait(), 10)
    finally:
        if worker.returncode is None:
            worker.kill()
            await asyncio.wait_for(worker.wait(), 10)


async def test_sigkilled_consumers_replay_at_most_a_commit_interval(
    tansu: Tansu, make_client: MakeClient, tmp_path: Path
) -> None:
    """Two consumer processes in turn are SIGKILLed mid-backlog, then one in-process consumer
    reads the rest. Nothing is lost, and each kill replays only what was processed since the
    last commit: at most ``commit-interval`` (50 ms) of work at the handler's top rate
    (``HANDLER_WORK`` per record, so at most 100 records in 50 ms), plus one fetch of
    ``prefetch`` records, with room for a slow machine; not the whole backlog processed before
    the kill (at least ``per_run`` records each time)."""
    client = make_client()
    topic, group = unique(), unique("g")
    await create_topic(tansu, topic)
    total, per_run, prefetch, kills = 3000, 600, 50, 2
    ids = await publish_backlog(client, topic, total)
    out = tmp_path / "processed.txt"
    args = {
        "topic": topic,
        "group": group,
        "out": str(out),
        "prefetch": prefetch,
        "work": HANDLER_WORK,
        "settings": {
            "enabled": True,
            "bootstrap_servers": tansu.bootstrap,
            "producer": TANSU_PRODUCER,
            "consumer": TANSU_CONSUMER,
            "commit_interval": "50ms",
        },
    }
    for _ in range(kills):
        # Each run processes at least ``per_run`` records not processed before, then dies.
        await run_worker_until(args, out, len(set(processed_lines(out))) + per_run)
    before = processed_lines(out)
    assert len(set(before)) < total, "the kills were not mid-backlog"
    seen = Counter(before)
    async with await client.subscribe(topic, SubscribeOptions(group=group)) as sub:
        while len(seen) < total:
            delivery = await sub.receive(timeout=WAIT)
            assert delivery is not None, f"records lost: {total - len(seen)} never arrived"
            seen[delivery.message.id] += 1
            await delivery.ack()
    assert set(seen) == set(ids), "every record was processed"
    duplicates = sum(seen.values()) - total
    bound = kills * (4 * 100 + prefetch)
    assert duplicates <= bound, (
        f"{duplicates} records processed twice over {kills} kills (at most {bound} expected): "
        "a kill replayed more than one commit interval's worth"
    )
