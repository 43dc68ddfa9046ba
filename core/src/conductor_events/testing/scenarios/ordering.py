"""Ordered backends: per-key publish order is delivery order, and with ``max_in_flight=1``
the next message waits for the previous one's settlement."""

from __future__ import annotations

import asyncio

from conductor_events.messages import Message
from conductor_events.testing import requirements as needs
from conductor_events.testing.consume import consume, make_messages, receive_one
from conductor_events.testing.harness import Harness, check_confirmed
from conductor_events.testing.scenario import scenario

NO_ACK_WINDOW = 0.1
"""Seconds in which the second message must not arrive while the first is unsettled."""


@scenario(needs.ordered)
async def no_ack(h: Harness) -> None:
    """With ``max_in_flight=1``, message 2 does not arrive within 100 ms while message 1 is
    unacked; after the ack it arrives (within the idle timeout). Both share one key, so a
    partitioned backend that keeps per-key order delivers them in publish order too."""
    location = await h.location("no-ack")
    messages = make_messages(2, "no-ack", key=lambda _: "no-ack")
    if h.capabilities.persistent:
        await h.publish_all(location, messages)
    subscription = await h.subscribe(location, max_in_flight=1)
    if not h.capabilities.persistent:
        await h.publish_all(location, messages)
    first = await receive_one(h, subscription, "no-ack, message 1")
    assert first.message.id == messages[0].id, (
        f"an ordered backend delivered {first.message.payload!r} first"
    )
    early = await subscription.receive(timeout=NO_ACK_WINDOW)
    if early is not None:
        raise AssertionError(
            f"no-ack: {early.message.payload!r} arrived while message 1 was unacked "
            "with max_in_flight=1"
        )
    await first.ack()
    second = await receive_one(h, subscription, "no-ack, message 2 after message 1's ack")
    assert second.message.id == messages[1].id, (
        f"after acking message 1, {second.message.payload!r} arrived instead of message 2"
    )
    await second.ack()


@scenario(needs.ordered)
async def in_order(h: Harness) -> None:
    """Messages on many keys, each key's published one after another by its own publisher:
    one subscription receives each key's messages in publish order."""
    counts = h.counts
    location = await h.location("in-order")
    keys = [f"key-{index}" for index in range(counts.in_order_keys)]
    messages = make_messages(counts.in_order, "in-order", key=lambda seq: keys[seq % len(keys)])
    by_key: dict[str, list[Message]] = {key: [] for key in keys}
    for message in messages:
        by_key[str(message.key)].append(message)

    async def publisher(key_messages: list[Message]) -> None:
        for message in key_messages:
            result = await h.publish(location, [message])
            check_confirmed(result, [message], "in-order publish")

    async def publish() -> None:
        await asyncio.gather(*(publisher(key_messages) for key_messages in by_key.values()))

    if h.capabilities.persistent:
        await publish()
    subscription = await h.subscribe(location)
    if not h.capabilities.persistent:
        await publish()
    consumed = await consume(h, [subscription], messages, what="in order")
    key_of = {message.id: str(message.key) for message in messages}
    for key, sent in by_key.items():
        received = [message_id for message_id in consumed.messages if key_of[message_id] == key]
        published = [message.id for message in sent]
        if received != published:
            first_wrong = next(
                i for i, (a, b) in enumerate(zip(received, published, strict=True)) if a != b
            )
            raise AssertionError(
                f"in order: key {key!r} was received out of publish order; position "
                f"{first_wrong} holds {received[first_wrong]} instead of {published[first_wrong]}"
            )
