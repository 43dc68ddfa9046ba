"""What becomes of a message after a nack past the attempt limit, an explicit dead-letter, or
an extension of its visibility: Conductor's top complaint is messages silently dropped, so
each path is followed to where the message ends up."""

from __future__ import annotations

import asyncio
import time

from conductor_events.backend import Delivery, DeliveryState
from conductor_events.messages import Message
from conductor_events.testing import requirements as needs
from conductor_events.testing.consume import (
    QUIET_WINDOW,
    describe_mismatch,
    expect_nothing,
    publish_and_subscribe,
    receive_one,
)
from conductor_events.testing.harness import Harness
from conductor_events.testing.scenario import scenario

NACK_REASON = "conformance: handler failed ✗ (simulated)"


def dead_letter_message(tag: str) -> Message:
    return Message(
        payload={"scenario": tag, "order": {"id": 42, "note": "Grüße, 世界"}},
        headers={"conformance-trace": f"{tag}-✓", "tenant": "Zürich"},
    )


async def check_dead_lettered(h: Harness, location: str, message: Message, reason: str) -> None:
    """The main location stays silent, and the dead-letter destination holds the message with
    its payload, headers and a reason that includes ``reason``."""
    support = h.capabilities.dead_letter
    assert support is not None
    main = await h.subscribe(location)
    await expect_nothing(
        h, main, QUIET_WINDOW, "a dead-lettered message was delivered again on its location"
    )
    dead_letters = support.location(location)
    subscription = await h.subscribe(dead_letters)
    delivery = await receive_one(h, subscription, f"the dead-letter destination {dead_letters}")
    received = delivery.message
    assert received.id == message.id, (
        f"the dead-letter destination delivered {received.id}, expected {message.id}"
    )
    mismatch = describe_mismatch(message, received)
    assert mismatch is None, f"the dead-lettered message arrived altered: {mismatch}"
    got = delivery.dead_letter_reason or ""
    assert reason in got, (
        f"Delivery.dead_letter_reason is {got!r}; it must keep the reason given ({reason!r})"
    )
    await delivery.ack()


@scenario(needs.attempt_limit)
async def dead_letter_after_attempt_limit(h: Harness) -> None:
    """A message nacked on each of its ``max_deliveries`` deliveries moves to the dead-letter
    destination with payload, headers and the last nack's reason, and is not delivered on
    its location again."""
    support = h.capabilities.dead_letter
    assert support is not None
    assert support.max_deliveries is not None
    location = await h.location("dead-letter")
    message = dead_letter_message("dead-letter-after-limit")
    [subscription] = await publish_and_subscribe(h, location, [message], max_in_flight=1)
    for attempt in range(1, support.max_deliveries + 1):
        delivery = await receive_one(
            h, subscription, f"delivery {attempt} of {support.max_deliveries} before dead-letter"
        )
        assert delivery.message.id == message.id
        await delivery.nack(reason=NACK_REASON)
    await subscription.close()
    await check_dead_lettered(h, location, message, NACK_REASON)


@scenario(needs.dead_letter)
async def dead_letter_explicit(h: Harness) -> None:
    """``Delivery.dead_letter(reason)`` moves a message at once, reason kept."""
    location = await h.location("dead-letter-now")
    message = dead_letter_message("dead-letter-explicit")
    [subscription] = await publish_and_subscribe(h, location, [message])
    delivery = await receive_one(h, subscription, "dead-letter explicit")
    reason = "conformance: poison message ✗"
    await delivery.dead_letter(reason)
    assert delivery.state is DeliveryState.DEAD_LETTERED
    await subscription.close()
    await check_dead_lettered(h, location, message, reason)


@scenario(needs.lease_expiry)
async def lease_expiry(h: Harness) -> None:
    """A delivery neither acked nor nacked (its handler hung, or its process died) comes back
    once its visibility timeout runs out, with ``attempt`` one higher each time; after the
    declared number of such deliveries it is dead-lettered with a reason, never delivered on
    its location again and never lost."""
    support = h.capabilities.dead_letter
    visibility = h.capabilities.visibility_timeout
    assert support is not None
    assert visibility is not None
    limit = support.expiry_limit
    assert limit is not None
    location = await h.location("lease-expiry")
    message = dead_letter_message("lease-expiry")
    # Held deliveries stay pending (never released: that would return the message at once),
    # so the subscription needs room for all of them.
    [subscription] = await publish_and_subscribe(
        h, location, [message], prefetch=1, max_in_flight=limit + 1, drain_timeout=0
    )
    wait = visibility + h.idle_timeout
    previous: Delivery | None = None
    for number in range(1, limit + 1):
        delivery = await subscription.receive(timeout=wait)
        if delivery is None:
            raise AssertionError(
                f"lease expiry: delivery {number} of {limit} did not arrive within {wait:g}s; "
                + (
                    "the message was not delivered at all"
                    if previous is None
                    else f"a delivery left unsettled was not delivered again once its "
                    f"{visibility:g}s visibility timeout ran out (lost or stuck invisible)"
                )
            )
        assert delivery.message.id == message.id, f"foreign message {delivery.message.id}"
        expected = 1 if previous is None else previous.attempt + 1
        assert delivery.attempt == expected, (
            f"lease expiry: delivery {number} has attempt {delivery.attempt}, expected "
            f"{expected}: each delivery after an expired visibility timeout counts one more"
        )
        previous = delivery
    dead_letters = await h.subscribe(support.location(location))
    # The main location is watched while the dead letter is awaited: many backends move a
    # message past its limit only when a consumer fetches it again.
    silence = asyncio.create_task(
        expect_nothing(
            h,
            subscription,
            2 * visibility,
            f"lease expiry: the message was delivered again on its location after its lease "
            f"expired on {limit} deliveries, instead of being dead-lettered",
        )
    )
    try:
        dead = await dead_letters.receive(timeout=wait)
    finally:
        await silence
    if dead is None:
        raise AssertionError(
            f"lease expiry: after {limit} deliveries whose lease expired, the message reached "
            f"neither its location again nor the dead-letter destination "
            f"{support.location(location)} within {wait:g}s: it was lost"
        )
    assert dead.message.id == message.id, (
        f"the dead-letter destination delivered {dead.message.id}, expected {message.id}"
    )
    mismatch = describe_mismatch(message, dead.message)
    assert mismatch is None, f"lease expiry: the dead-lettered message arrived altered: {mismatch}"
    assert dead.dead_letter_reason, (
        "lease expiry: the dead-lettered message carries no Delivery.dead_letter_reason; the "
        "dead-letter destination must say why the message is there"
    )
    await dead.ack()


@scenario(needs.visibility_timeout)
async def visibility_extension(h: Harness) -> None:
    """A handler holds message X for 1.5 visibility timeouts, extending it every third of one:
    a second subscription never receives X meanwhile. A control message Y, held without
    extending, must reach the second subscription once the timeout passes, which proves the
    declared timeout is the one the backend uses (else the check could pass vacuously)."""
    visibility = h.capabilities.visibility_timeout
    assert visibility is not None
    location = await h.location("visibility")
    extended = Message(payload={"scenario": "visibility", "role": "extended"})
    control = Message(payload={"scenario": "visibility", "role": "control"})
    [holder] = await publish_and_subscribe(
        h, location, [extended, control], prefetch=2, max_in_flight=2, drain_timeout=0
    )
    held: dict[str, Delivery] = {}
    while len(held) < 2:
        delivery = await receive_one(h, holder, "visibility extension: the handler's messages")
        held.setdefault(delivery.message.id, delivery)
    kept = held[extended.id]
    started = time.monotonic()
    await kept.extend(visibility)
    next_extend = started + visibility / 3
    watcher = await h.subscribe(location)
    control_seen = False
    while True:
        now = time.monotonic()
        elapsed = now - started
        if elapsed >= 1.5 * visibility and control_seen:
            break
        if elapsed > visibility + h.idle_timeout:
            raise AssertionError(
                f"visibility extension: the control message, held without extending, was "
                f"not delivered again {elapsed:.1f}s after it was received; the backend's "
                f"visibility timeout is not the declared {visibility:g}s, or it never "
                "redelivers unsettled messages"
            )
        if now >= next_extend:
            await kept.extend(visibility)
            next_extend = time.monotonic() + visibility / 3
        seen = await watcher.receive(timeout=max(0.01, min(0.1, next_extend - now)))
        if seen is None:
            continue
        if seen.message.id == extended.id:
            raise AssertionError(
                f"visibility extension: the extended message was delivered to another "
                f"subscription {elapsed:.1f}s after it was received, while its handler kept "
                f"extending it by {visibility:g}s every {visibility / 3:.2f}s"
            )
        assert seen.message.id == control.id, f"foreign message {seen.message.id}"
        control_seen = True
        await seen.ack()
    await kept.ack()
    await holder.close()
