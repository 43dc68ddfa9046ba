"""Consuming a batch at a time: ``Subscription.receive_batch`` and ``Subscription.ack_many``.

Fast consumers settle a batch per call instead of a message per call, and backends override
``_ack_many`` to turn that into few broker calls (or into bookkeeping only), so the batch path
is a backend's own code and is checked here as the one-by-one path is elsewhere.
"""

from __future__ import annotations

from conductor_events.backend import Delivery, DeliveryState, Subscription
from conductor_events.errors import DeliveryStateError
from conductor_events.testing.consume import (
    QUIET_WINDOW,
    describe_mismatch,
    expect_nothing,
    make_messages,
    publish_and_subscribe,
)
from conductor_events.testing.harness import Harness
from conductor_events.testing.scenario import scenario

BATCH = 7
"""What each ``receive_batch`` asks for: not a divisor of the in-flight limit on purpose."""
IN_FLIGHT = 10


@scenario()
async def batch_receive_ack(h: Harness) -> None:
    """``receive_batch`` never hands out more than asked nor more than ``max_in_flight``
    unsettled; ``ack_many`` refuses a batch holding a settled delivery without acking any of
    it, then acks every delivery of a batch; every message arrives intact, and once acked
    none is delivered again (watched for 1.5 visibility timeouts when one is declared)."""
    location = await h.location("batch")
    messages = make_messages(h.counts.batch_receive, "batch-receive-ack")
    by_id = {message.id: message for message in messages}
    [subscription] = await publish_and_subscribe(
        h, location, messages, max_in_flight=IN_FLIGHT, prefetch=IN_FLIGHT
    )
    received: set[str] = set()
    held: list[Delivery] = []
    acked_earlier: Delivery | None = None
    while len(received) < len(messages):
        batch = await subscription.receive_batch(BATCH, timeout=h.idle_timeout)
        if not batch:
            raise AssertionError(
                f"batch receive: {len(messages) - len(received)} of {len(messages)} messages "
                f"did not arrive (receive_batch returned nothing for {h.idle_timeout:g}s)"
            )
        assert len(batch) <= BATCH, f"receive_batch({BATCH}) handed out {len(batch)}"
        held += batch
        assert subscription.in_flight == len(held) <= IN_FLIGHT, (
            f"{len(held)} deliveries handed out and unsettled, in_flight says "
            f"{subscription.in_flight}; max_in_flight is {IN_FLIGHT}"
        )
        for delivery in batch:
            sent = by_id.get(delivery.message.id)
            assert sent is not None, f"received foreign message {delivery.message.id}"
            mismatch = describe_mismatch(sent, delivery.message)
            assert mismatch is None, f"message {sent.id} arrived altered: {mismatch}"
            if delivery.message.id in received:
                assert not h.capabilities.exactly_once, f"{sent.id} was delivered twice"
            received.add(delivery.message.id)
        if len(held) < IN_FLIGHT and len(received) < len(messages):
            continue  # hold on: the next receive_batch must respect the in-flight limit
        if acked_earlier is not None:
            await _refused_without_effect(subscription, acked_earlier, held)
        await subscription.ack_many(held)
        unsettled = [d.message.id for d in held if d.state is not DeliveryState.ACKED]
        assert not unsettled, f"ack_many left deliveries unacked: {unsettled}"
        acked_earlier = held[0]
        held = []
    assert subscription.in_flight == 0, f"{subscription.in_flight} still in flight"
    await subscription.close()
    # An ack the broker never got shows once the visibility timeout passes: watch past it.
    visibility = h.capabilities.visibility_timeout
    window = QUIET_WINDOW if visibility is None else 1.5 * visibility
    fresh = await h.subscribe(location)
    await expect_nothing(h, fresh, window, "batch receive: a message acked with ack_many came back")


async def _refused_without_effect(
    subscription: Subscription, settled: Delivery, batch: list[Delivery]
) -> None:
    """``ack_many`` on a batch holding an already settled delivery raises and acks nothing."""
    try:
        await subscription.ack_many([*batch, settled])
    except DeliveryStateError:
        pass
    else:
        raise AssertionError("ack_many accepted a delivery that was already acked")
    acked = [d.message.id for d in batch if d.state is not DeliveryState.PENDING]
    assert not acked, f"a refused ack_many still settled {acked}"
