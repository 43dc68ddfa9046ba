"""The handle contract between the core and a backend: ``Delivery`` is the core's, final, and
changes its state itself, once the backend's :class:`DeliveryHandle` call succeeded."""

from __future__ import annotations

from typing import Any

import pytest

from conductor_events.backend import (
    Delivery,
    DeliveryHandle,
    DeliveryState,
    SubscribeOptions,
    Subscription,
)
from conductor_events.errors import DeliveryStateError, QueueError
from conductor_events.messages import Message


class Broker(Subscription):
    """A backend whose broker is a list, and whose handles record every call made to them."""

    def __init__(self, count: int, **options: Any) -> None:
        super().__init__(SubscribeOptions(**options))
        self.waiting = [Message({"n": n}, id=f"m{n}") for n in range(count)]
        self.calls: list[tuple[str, str]] = []
        self.failing: set[str] = set()
        """Calls (``"ack"``, ``"nack"``, ...) the broker refuses."""

    async def _fetch(self, max_messages: int, timeout: float) -> list[Delivery]:
        taken, self.waiting = self.waiting[:max_messages], self.waiting[max_messages:]
        return [Delivery(message, 1, Recorder(self, message)) for message in taken]


class Recorder(DeliveryHandle):
    def __init__(self, broker: Broker, message: Message) -> None:
        self.broker = broker
        self.message = message
        self.seen: list[DeliveryState] = []

    async def _call(self, name: str) -> None:
        self.broker.calls.append((name, self.message.id))
        if name in self.broker.failing:
            raise QueueError(f"the broker refused the {name} of {self.message.id}")

    async def ack(self) -> None:
        await self._call("ack")

    async def nack(self, delay: float, reason: str | None) -> None:
        await self._call(f"nack {delay:g} {reason}")

    async def extend(self, seconds: float) -> None:
        await self._call(f"extend {seconds:g}")


def state(delivery: Delivery) -> DeliveryState:
    """Read afresh each time (an ``is`` assertion would narrow the attribute for mypy)."""
    return delivery.state


async def received(broker: Broker) -> Delivery:
    delivery = await broker.receive(timeout=1)
    assert delivery is not None
    return delivery


def test_delivery_cannot_be_subclassed() -> None:
    with pytest.raises(TypeError, match="final"):

        class Custom(Delivery):  # type: ignore[misc]
            pass


async def test_state_changes_after_the_handle_call_and_is_not_writable() -> None:
    broker = Broker(1)
    delivery = await received(broker)
    states_during_call: list[DeliveryState] = []

    class Watching(Recorder):
        async def ack(self) -> None:
            states_during_call.append(delivery.state)
            await super().ack()

    delivery.handle = Watching(broker, delivery.message)
    await delivery.ack()
    assert states_during_call == [DeliveryState.PENDING]
    assert state(delivery) is DeliveryState.ACKED
    assert broker.in_flight == 0, "the settlement freed the delivery's place"
    with pytest.raises(AttributeError):
        delivery.state = DeliveryState.PENDING  # type: ignore[misc]


async def test_a_failing_handle_call_leaves_the_delivery_pending_and_in_flight() -> None:
    broker = Broker(1)
    delivery = await received(broker)
    broker.failing = {"ack"}
    with pytest.raises(QueueError, match="refused the ack of m0"):
        await delivery.ack()
    assert state(delivery) is DeliveryState.PENDING
    assert broker.in_flight == 1
    await delivery.nack(2.5, "handler failed")  # still pending: it can be settled otherwise
    assert state(delivery) is DeliveryState.NACKED
    assert broker.calls == [("ack", "m0"), ("nack 2.5 handler failed", "m0")]
    assert broker.in_flight == 0


async def test_a_second_settlement_raises_and_never_reaches_the_broker() -> None:
    broker = Broker(1)
    delivery = await received(broker)
    await delivery.ack()
    for settle in (delivery.ack, delivery.nack, lambda: delivery.dead_letter("late")):
        with pytest.raises(DeliveryStateError, match="m0: it was already acked"):
            await settle()
    with pytest.raises(DeliveryStateError):
        await delivery.extend(10)
    await delivery.release()  # a no-op on a settled delivery
    assert broker.calls == [("ack", "m0")]
    assert state(delivery) is DeliveryState.ACKED


async def test_the_handle_s_defaults_no_dead_letter_destination_and_release_as_a_nack() -> None:
    broker = Broker(2, prefetch=2)
    first = await received(broker)
    with pytest.raises(NotImplementedError, match="Recorder: this queue type has no dead-letter"):
        await first.dead_letter("poison")
    assert state(first) is DeliveryState.PENDING
    await first.release()
    assert state(first) is DeliveryState.RELEASED
    assert broker.calls == [("nack 0 None", "m0")]


async def test_close_releases_in_flight_and_buffered_deliveries_not_the_settled_ones() -> None:
    broker = Broker(4, prefetch=4, drain_timeout=0)
    acked, held = await received(broker), await received(broker)
    await acked.ack()
    assert broker.buffered == 2
    await broker.close()
    assert state(held) is DeliveryState.RELEASED
    assert state(acked) is DeliveryState.ACKED
    assert sorted(broker.calls) == [
        ("ack", "m0"),
        ("nack 0 None", "m1"),
        ("nack 0 None", "m2"),
        ("nack 0 None", "m3"),
    ]
    assert broker.in_flight == 0


async def test_ack_many_hands_the_backend_the_deliveries_handles() -> None:
    seen: list[DeliveryHandle] = []

    class Batching(Broker):
        async def _ack_many(self, handles: object) -> list[Exception | None]:
            assert isinstance(handles, list)
            seen.extend(handles)
            return [None] * len(handles)

    broker = Batching(3, prefetch=3)
    batch = await broker.receive_batch(3, timeout=1)
    await broker.ack_many(batch)
    assert seen == [d.handle for d in batch]
    assert all(d.state is DeliveryState.ACKED for d in batch)
    assert broker.calls == [], "the batch went to _ack_many, not to each handle"
    assert broker.in_flight == 0


async def test_a_backend_reporting_the_wrong_number_of_outcomes_acks_nothing() -> None:
    class Miscounting(Broker):
        async def _ack_many(self, handles: object) -> list[Exception | None]:
            return [None]

    broker = Miscounting(2, prefetch=2)
    batch = await broker.receive_batch(2, timeout=1)
    with pytest.raises(QueueError, match="returned 1 outcomes for 2 deliveries"):
        await broker.ack_many(batch)
    assert [d.state for d in batch] == [DeliveryState.PENDING] * 2
