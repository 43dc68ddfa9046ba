"""The batch consume path of the queue contract: ``Subscription.receive_batch`` and
``Subscription.ack_many``, on the built-in local queue (whose ``_ack_many`` is one SQLite
transaction) and on a backend that keeps the base class's one-by-one default."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from conductor_events.backend import (
    Delivery,
    DeliveryHandle,
    DeliveryState,
    SubscribeOptions,
    Subscription,
)
from conductor_events.errors import DeliveryStateError, QueueError
from conductor_events.event_queues import EventQueues
from conductor_events.local.client import LocalQueueClient
from conductor_events.messages import Message


async def publish_numbers(queues: EventQueues, queue: str, count: int) -> list[str]:
    messages = [Message({"n": n}, id=f"m{n}") for n in range(count)]
    assert (await queues.publish(f"local:{queue}", messages)).ok
    return [m.id for m in messages]


async def local_depth(queues: EventQueues, queue: str) -> int:
    client = queues.client("local")
    assert isinstance(client, LocalQueueClient)
    return await client.depth(queue)


async def test_receive_batch_hands_out_up_to_the_asked_number_in_order(
    queues: EventQueues,
) -> None:
    ids = await publish_numbers(queues, "q", 25)
    options = SubscribeOptions(prefetch=10, max_in_flight=100)
    got: list[str] = []
    async with await queues.subscribe("local:q", options) as subscription:
        while len(got) < len(ids):
            batch = await subscription.receive_batch(8, timeout=5)
            assert 0 < len(batch) <= 8
            got += [d.message.id for d in batch]
            await subscription.ack_many(batch)
            assert all(d.state is DeliveryState.ACKED for d in batch)
        assert subscription.in_flight == 0
    assert got == ids
    assert await local_depth(queues, "q") == 0


async def test_receive_batch_fetches_more_than_prefetch_when_asked(queues: EventQueues) -> None:
    await publish_numbers(queues, "q", 50)
    options = SubscribeOptions(prefetch=5, max_in_flight=100)
    async with await queues.subscribe("local:q", options) as subscription:
        batch = await subscription.receive_batch(40, timeout=5)
        assert len(batch) == 40, "one round trip may fetch what the caller asked for"
        await subscription.ack_many(batch)


async def test_receive_batch_stays_within_max_in_flight(queues: EventQueues) -> None:
    await publish_numbers(queues, "q", 30)
    options = SubscribeOptions(prefetch=10, max_in_flight=10)
    async with await queues.subscribe("local:q", options) as subscription:
        first = await subscription.receive_batch(7, timeout=5)
        second = await subscription.receive_batch(7, timeout=5)
        assert len(first) == 7
        assert len(second) == 3, "only three more fit under max_in_flight=10"
        assert await subscription.receive_batch(7, timeout=0.2) == []
        await subscription.ack_many(first)
        third = await subscription.receive_batch(7, timeout=5)
        assert len(third) == 7, "acking the first batch made room for another"
        await subscription.ack_many(second + third)


async def test_receive_batch_returns_empty_on_timeout_and_refuses_zero(
    queues: EventQueues,
) -> None:
    async with await queues.subscribe("local:empty") as subscription:
        assert await subscription.receive_batch(10, timeout=0.1) == []
        with pytest.raises(ValueError, match="at least 1"):
            await subscription.receive_batch(0)


async def test_ack_many_refuses_a_settled_delivery_and_acks_none(queues: EventQueues) -> None:
    await publish_numbers(queues, "q", 4)
    async with await queues.subscribe("local:q") as subscription:
        batch = await subscription.receive_batch(4, timeout=5)
        await batch[0].ack()
        with pytest.raises(DeliveryStateError, match="m0: it was already acked"):
            await subscription.ack_many(batch)
        assert [d.state for d in batch[1:]] == [DeliveryState.PENDING] * 3
        assert subscription.in_flight == 3
        await subscription.ack_many(batch[1:])
    assert await local_depth(queues, "q") == 0


async def test_ack_many_refuses_one_delivery_twice_and_foreign_deliveries(
    queues: EventQueues,
) -> None:
    await publish_numbers(queues, "a", 2)
    await publish_numbers(queues, "b", 1)
    async with (
        await queues.subscribe("local:a") as first,
        await queues.subscribe("local:b") as second,
    ):
        ours = await first.receive_batch(2, timeout=5)
        theirs = await second.receive_batch(1, timeout=5)
        with pytest.raises(DeliveryStateError, match="twice"):
            await first.ack_many([ours[0], ours[0]])
        with pytest.raises(DeliveryStateError, match="not received from this subscription"):
            await first.ack_many([ours[0], *theirs])
        assert all(d.state is DeliveryState.PENDING for d in [*ours, *theirs])
        await first.ack_many([])  # nothing to do, nothing refused
        await first.ack_many(ours)
        await second.ack_many(theirs)


async def test_ack_many_after_the_claim_expired_warns_and_the_message_comes_back(
    fast: EventQueues,
) -> None:
    await publish_numbers(fast, "q", 2)
    async with await fast.subscribe("local:q") as slow:
        batch = await slow.receive_batch(2, timeout=5)
        await asyncio.sleep(0.5)  # both claims expire
        async with await fast.subscribe("local:q") as other:
            again = await other.receive_batch(2, timeout=5)
            assert [d.message.id for d in again] == ["m0", "m1"]
            with capture_logs() as logs:
                await slow.ack_many(batch)
            expired = [e for e in logs if e["event"] == "local.delivery.expired"]
            assert [e["message_id"] for e in expired] == ["m0", "m1"]
            assert await local_depth(fast, "q") == 2, "a stale ack deleted a message"
            await other.ack_many(again)
    assert await local_depth(fast, "q") == 0


class _Refusing(Subscription):
    """A backend on the base class's one-by-one ``_ack_many``, whose broker refuses the acks
    of the messages named in ``refuse``."""

    def __init__(self, messages: list[Message], refuse: set[str]) -> None:
        super().__init__(SubscribeOptions(prefetch=10))
        self.waiting = list(messages)
        self.refuse = refuse
        self.acked: list[str] = []
        self.released: list[str] = []
        self.releasing = 0
        self.most_releasing_at_once = 0

    async def _fetch(self, max_messages: int, timeout: float) -> list[Delivery]:
        taken, self.waiting = self.waiting[:max_messages], self.waiting[max_messages:]
        return [Delivery(message, 1, _RefusingHandle(self, message)) for message in taken]


class _RefusingHandle(DeliveryHandle):
    def __init__(self, owner: _Refusing, message: Message) -> None:
        self._owner = owner
        self.message = message

    async def ack(self) -> None:
        if self.message.id in self._owner.refuse:
            raise QueueError(f"the broker refused {self.message.id}")
        self._owner.acked.append(self.message.id)

    async def nack(self, delay: float, reason: str | None) -> None:
        self._owner.waiting.append(self.message)

    async def extend(self, seconds: float) -> None:
        pass

    async def release(self) -> None:
        owner = self._owner
        owner.releasing += 1
        owner.most_releasing_at_once = max(owner.most_releasing_at_once, owner.releasing)
        await asyncio.sleep(0.01)  # a broker round trip
        owner.releasing -= 1
        owner.released.append(self.message.id)


async def test_ack_many_reports_refused_acks_and_leaves_them_pending() -> None:
    messages = [Message({"n": n}, id=f"m{n}") for n in range(5)]
    subscription = _Refusing(messages, refuse={"m1", "m3"})
    batch = await subscription.receive_batch(5, timeout=1)
    with pytest.raises(QueueError) as caught:
        await subscription.ack_many(batch)
    assert str(caught.value) == (
        "ack of 2 of 5 messages failed, they stay pending: m1: the broker refused m1; "
        "m3: the broker refused m3"
    )
    assert subscription.acked == ["m0", "m2", "m4"]
    states = {d.message.id: d.state for d in batch}
    assert states == {
        "m0": DeliveryState.ACKED,
        "m1": DeliveryState.PENDING,
        "m2": DeliveryState.ACKED,
        "m3": DeliveryState.PENDING,
        "m4": DeliveryState.ACKED,
    }
    assert subscription.in_flight == 2
    subscription.options = SubscribeOptions(drain_timeout=0)
    await subscription.close()
    assert sorted(subscription.released) == ["m1", "m3"], "close returns the refused ones"


async def test_close_returns_held_messages_concurrently() -> None:
    """Releasing on close goes out all at once, so that a backend that batches its calls
    (SQS: ChangeMessageVisibilityBatch) can batch them, instead of one round trip each."""
    messages = [Message({"n": n}, id=f"m{n}") for n in range(40)]
    subscription = _Refusing(messages, refuse=set())
    subscription.options = SubscribeOptions(prefetch=40, max_in_flight=40, drain_timeout=0)
    batch = await subscription.receive_batch(20, timeout=1)
    assert len(batch) == 20
    await subscription.close()
    assert sorted(subscription.released) == sorted(m.id for m in messages)
    assert subscription.most_releasing_at_once == 20, "the buffered ones, then the in-flight"


async def test_local_ack_many_is_one_transaction(queues: EventQueues) -> None:
    """One commit for the batch: that is what makes it several times faster than an ack
    each, and all of it is committed when ack_many returns."""
    await publish_numbers(queues, "q", 20)
    client = queues.client("local")
    assert isinstance(client, LocalQueueClient)
    async with await queues.subscribe("local:q", SubscribeOptions(prefetch=20)) as subscription:
        batch = await subscription.receive_batch(20, timeout=5)
        assert len(batch) == 20
        statements: list[str] = []
        database = client.store._file.connect()
        database.set_trace_callback(statements.append)
        try:
            await subscription.ack_many(batch)
        finally:
            database.set_trace_callback(None)
    assert statements.count("COMMIT") == 1
    assert sum(s.startswith("DELETE") for s in statements) == 20
    assert await local_depth(queues, "q") == 0
