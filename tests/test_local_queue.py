"""The built-in local queue: at-least-once delivery, dead-lettering, crashes, bad input."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from conductor_events.backend import Delivery, SubscribeOptions, Subscription
from conductor_events.errors import DeliveryStateError, QueueError
from conductor_events.event_queues import EventQueues
from conductor_events.local.client import LocalQueueClient
from conductor_events.messages import Message
from conductor_events.plugins import PluginHost

ROOT = Path(__file__).resolve().parent.parent
SHORT_DRAIN = SubscribeOptions(drain_timeout=0.1)
"""For tests that leave deliveries unsettled on purpose: close returns them without waiting."""


def local_client(queues: EventQueues) -> LocalQueueClient:
    client = queues.client("local")
    assert isinstance(client, LocalQueueClient)
    return client


async def receive(subscription: Subscription, timeout: float = 5) -> Delivery:
    delivery = await subscription.receive(timeout=timeout)
    assert delivery is not None, "expected a message"
    return delivery


async def publish_numbers(queues: EventQueues, queue: str, count: int) -> list[str]:
    messages = [Message({"n": n}, id=f"m{n}") for n in range(count)]
    result = await queues.publish(f"local:{queue}", messages)
    assert result.ok
    return [m.id for m in messages]


async def test_fifo_delivery_and_ack_removes(queues: EventQueues) -> None:
    ids = await publish_numbers(queues, "q", 25)
    got = []
    async with await queues.subscribe("local:q") as subscription:
        for _ in ids:
            delivery = await receive(subscription)
            got.append(delivery.message.id)
            assert delivery.attempt == 1
            await delivery.ack()
    assert got == ids
    assert await local_client(queues).depth("q") == 0


async def test_headers_key_and_timestamps_round_trip(queues: EventQueues) -> None:
    sent = Message({"a": [1, 2]}, headers={"trace": "t-1", "émoji": "✓"}, key="customer-7")
    await queues.publish("local:q", [sent])
    async with await queues.subscribe("local:q") as subscription:
        delivery = await receive(subscription)
        assert delivery.message == sent
        await delivery.ack()


async def test_unacked_message_comes_back_after_the_visibility_timeout(fast: EventQueues) -> None:
    await publish_numbers(fast, "q", 1)
    async with await fast.subscribe("local:q") as subscription:
        first = await receive(subscription)
        assert await subscription.receive(timeout=0.1) is None  # invisible while claimed
        second = await receive(subscription, timeout=3)
        assert second.message.id == first.message.id
        assert second.attempt == 2
        await second.ack()
        with capture_logs() as logs:
            await first.ack()  # its claim was taken over: a warning, not a double delete
        assert logs[0]["event"] == "local.delivery.expired"


async def test_nack_with_delay_hides_the_message_until_then(queues: EventQueues) -> None:
    await publish_numbers(queues, "q", 1)
    async with await queues.subscribe("local:q") as subscription:
        await (await receive(subscription)).nack(delay=0.5)
        assert await subscription.receive(timeout=0.2) is None
        again = await receive(subscription, timeout=3)
        assert again.attempt == 2
        await again.ack()


async def test_nack_past_max_deliveries_dead_letters_with_payload_headers_reason(
    fast: EventQueues,
) -> None:
    await fast.publish("local:q", [Message({"x": 1}, id="poison", headers={"h": "v"})])
    async with await fast.subscribe("local:q") as subscription:
        await (await receive(subscription)).nack(reason="handler said no")
        await (await receive(subscription)).nack(reason="handler said no again")
        assert await subscription.receive(timeout=0.4) is None
    async with await fast.subscribe("local:q.dlq") as dead:
        delivery = await receive(dead)
        assert delivery.message.id == "poison"
        assert delivery.message.payload == {"x": 1}
        assert delivery.message.headers == {"h": "v"}
        assert delivery.dead_letter_reason == "handler said no again (delivery 2 of 2)"
        await delivery.ack()


async def test_expired_past_max_deliveries_dead_letters_on_next_claim(fast: EventQueues) -> None:
    await publish_numbers(fast, "q", 1)
    async with await fast.subscribe("local:q", SHORT_DRAIN) as subscription:
        await receive(subscription)  # attempt 1, never settled
        await receive(subscription, timeout=3)  # attempt 2, never settled
        assert await subscription.receive(timeout=0.8) is None
    async with await fast.subscribe("local:q.dlq") as dead:
        delivery = await receive(dead)
        assert delivery.dead_letter_reason is not None
        assert "not acknowledged after 2 deliveries" in delivery.dead_letter_reason
        await delivery.ack()


async def test_explicit_dead_letter(queues: EventQueues) -> None:
    await publish_numbers(queues, "q", 1)
    async with await queues.subscribe("local:q") as subscription:
        await (await receive(subscription)).dead_letter("malformed order")
    async with await queues.subscribe("local:q.dlq") as dead:
        delivery = await receive(dead)
        assert delivery.dead_letter_reason == "malformed order"
        await delivery.ack()


async def test_extend_keeps_a_slow_message_invisible(fast: EventQueues) -> None:
    await publish_numbers(fast, "q", 1)
    async with await fast.subscribe("local:q") as subscription:
        delivery = await receive(subscription)
        for _ in range(4):
            await asyncio.sleep(0.15)
            await delivery.extend(0.3)
        assert await subscription.receive(timeout=0.1) is None
        await delivery.ack()
    assert await local_client(fast).depth("q") == 0


async def test_settling_twice_is_refused(queues: EventQueues) -> None:
    await publish_numbers(queues, "q", 1)
    async with await queues.subscribe("local:q") as subscription:
        delivery = await receive(subscription)
        await delivery.ack()
        with pytest.raises(DeliveryStateError, match="it was already acked"):
            await delivery.nack()


async def test_close_returns_prefetched_and_in_flight_messages_uncounted(
    queues: EventQueues,
) -> None:
    await publish_numbers(queues, "q", 5)
    options = SubscribeOptions(prefetch=5, drain_timeout=0.1)
    async with await queues.subscribe("local:q", options) as subscription:
        held = await receive(subscription)  # the other 4 stay prefetched in the buffer
    assert held.settled
    async with await queues.subscribe("local:q", SubscribeOptions(prefetch=5)) as again:
        deliveries = [await receive(again, timeout=1) for _ in range(5)]
        for delivery in deliveries:
            await delivery.ack()
    assert sorted(d.message.id for d in deliveries) == [f"m{n}" for n in range(5)]
    assert {d.attempt for d in deliveries} == {1}


async def test_max_in_flight_holds_back_the_next_message(queues: EventQueues) -> None:
    await publish_numbers(queues, "q", 2)
    options = SubscribeOptions(max_in_flight=1, prefetch=1)
    async with await queues.subscribe("local:q", options) as subscription:
        first = await receive(subscription)
        assert await subscription.receive(timeout=0.1) is None
        await first.ack()
        second = await receive(subscription)
        assert second.message.id == "m1"
        await second.ack()


async def test_max_in_flight_holds_back_a_message_already_prefetched(
    queues: EventQueues,
) -> None:
    await publish_numbers(queues, "q", 4)
    # Two deliveries are still unsettled at the end: close returns them to the queue at once
    # instead of waiting the default 30 s drain timeout for someone to settle them.
    options = SubscribeOptions(max_in_flight=2, prefetch=4, drain_timeout=0.1)
    async with await queues.subscribe("local:q", options) as subscription:
        first = await receive(subscription)
        await receive(subscription)
        assert subscription.in_flight == 2
        assert await subscription.receive(timeout=0.1) is None, "two in flight is the limit"
        await first.ack()
        third = await receive(subscription)
        assert third.message.id == "m2"
        assert subscription.in_flight == 2


async def test_two_consumers_racing_each_get_distinct_messages(
    plugins: PluginHost, write_properties: Callable[..., Path], queue_path: Path
) -> None:
    config = write_properties(f"conductor.event-queues.local.path={queue_path}\n")
    async with (
        EventQueues.from_files([config], plugins=plugins, environ={}) as one,
        EventQueues.from_files([config], plugins=plugins, environ={}) as two,
    ):
        ids = await publish_numbers(one, "race", 200)

        async def drain(queues: EventQueues) -> list[str]:
            got = []
            opts = SubscribeOptions(prefetch=3)
            async with await queues.subscribe("local:race", opts) as subscription:
                while (delivery := await subscription.receive(timeout=0.3)) is not None:
                    got.append(delivery.message.id)
                    await delivery.ack()
                    await asyncio.sleep(0)
            return got

        first, second = await asyncio.gather(drain(one), drain(two))
    assert first, "the first consumer got nothing"
    assert second, "the second consumer got nothing"
    assert sorted(first + second) == sorted(ids)


async def test_non_json_body_is_delivered_as_a_string(
    queues: EventQueues, queue_path: Path
) -> None:
    await publish_numbers(queues, "q", 1)  # creates the file and schema
    with sqlite3.connect(queue_path) as db:
        db.execute(
            "INSERT INTO messages (queue, id, body, created_at, visible_at)"
            " VALUES ('raw', 'r1', ?, 0, 0)",
            (b"not {json",),
        )
    async with await queues.subscribe("local:raw") as subscription:
        delivery = await receive(subscription)
        assert delivery.message.payload == "not {json"
        await delivery.ack()


async def test_batch_with_an_oversize_message_reports_exactly_that_one(
    queues: EventQueues,
) -> None:
    big = Message("x" * (1024 * 1024), id="big")
    result = await queues.publish("local:q", [Message(1, id="a"), big, Message(2, id="b")])
    assert result.published == ["a", "b"]
    assert [f.message_id for f in result.failed] == ["big"]
    assert "1048578 bytes exceeds the local queue limit" in result.failed[0].reason
    assert await local_client(queues).depth("q") == 2


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("garbage", "is not an SQLite database, or is corrupt"),
        ("missing-dir", "does not exist"),
        ("read-only-dir", "cannot be opened for writing"),
    ],
)
async def test_bad_database_file_gives_a_clear_error(
    plugins: PluginHost,
    write_properties: Callable[..., Path],
    tmp_path: Path,
    setup: str,
    message: str,
) -> None:
    path = tmp_path / "queue.db"
    if setup == "garbage":
        path.write_bytes(b"this is not a database at all" * 100)
    elif setup == "missing-dir":
        path = tmp_path / "nope" / "queue.db"
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        path = locked / "queue.db"
        if os.geteuid() == 0:
            path.mkdir()  # root ignores permissions: a directory in the file's place fails too
    config = write_properties(f"conductor.event-queues.local.path={path}\n")
    async with EventQueues.from_files([config], plugins=plugins, environ={}) as queues:
        with pytest.raises(QueueError) as caught:
            await queues.publish("local:q", [Message(1)])
    assert message in str(caught.value)
    assert str(path) in str(caught.value)
    assert "conductor.event-queues.local.path" in str(caught.value)


# -- several processes -------------------------------------------------------------------------


def worker(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.local_worker", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_processes_publishing_and_consuming_one_file_lose_and_duplicate_nothing(
    queue_path: Path,
) -> None:
    publishers = [worker("publish", str(queue_path), "shared", f"p{i}", "300") for i in range(2)]
    consumers = [worker("consume", str(queue_path), "shared") for _ in range(2)]
    for process in publishers:
        assert process.wait(timeout=120) == 0
    outputs = [process.communicate(timeout=120)[0].split() for process in consumers]
    assert all(out[0] == "ready" for out in outputs)
    # Consumers stop after two idle seconds; on a loaded machine that can come before the
    # publishers are done, so a last consumer collects whatever they left.
    leftover = worker("consume", str(queue_path), "shared").communicate(timeout=120)[0].split()
    received = [line for out in [*outputs, leftover] for line in out if line != "ready"]
    expected = [f"p{i}-{n}" for i in range(2) for n in range(300)]
    assert sorted(received) == sorted(expected)  # every message, and each exactly once


def test_consumer_killed_mid_batch_loses_nothing(queue_path: Path) -> None:
    assert worker("publish", str(queue_path), "jobs", "j", "100").wait(timeout=60) == 0
    victim = worker("consume", str(queue_path), "jobs", "--ack-delay", "0.02")
    assert victim.stdout is not None
    acked: list[str] = []
    assert victim.stdout.readline().strip() == "ready"
    while len(acked) < 20:
        acked.append(victim.stdout.readline().strip())
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    acked += victim.stdout.read().split()  # acks flushed before the kill landed
    # The victim held up to 10 claimed messages; they return after the visibility timeout.
    with sqlite3.connect(queue_path) as db:
        db.execute("UPDATE messages SET visible_at = 0")  # let that timeout pass now
    survivor = worker("consume", str(queue_path), "jobs")
    rest = [line for line in survivor.communicate(timeout=60)[0].split() if line != "ready"]
    assert sorted(set(acked + rest)) == sorted(f"j-{n}" for n in range(100))
    assert not set(acked) & set(rest)  # acked ones are never delivered again


async def test_opening_the_file_waits_for_another_process_lock(queues: EventQueues) -> None:
    """Processes opening one new file at once meet each other's locks during set-up."""
    path = local_client(queues).settings.path
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # what another process's schema set-up looks like
    asyncio.get_running_loop().call_later(0.3, holder.execute, "COMMIT")
    try:
        result = await queues.publish("local:q", [Message({"n": 1})])
    finally:
        holder.close()
    assert result.ok
    assert await local_client(queues).depth("q") == 1
