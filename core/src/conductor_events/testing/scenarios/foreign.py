"""Bodies written by producers that do not use conductor-events: whatever they are, each is
delivered (as its text when it is not JSON), can be acked, and does not stop the messages
behind it.

A consumer that chokes on a body while receiving has no delivery yet to nack or dead-letter,
so the message can only block its location (or stop the consumer at every restart): the
at-least-once promise turned into "never again".
"""

from __future__ import annotations

import time

from conductor_events.backend import Delivery, Subscription
from conductor_events.messages import Message
from conductor_events.testing import requirements as needs
from conductor_events.testing.consume import POLL, QUIET_WINDOW, describe_mismatch, expect_nothing
from conductor_events.testing.harness import Harness
from conductor_events.testing.scenario import scenario

TEXT_BODIES = (
    b"[1,2",  # truncated JSON
    b'"abc',  # a string never closed
    b'{"order": 7, "items": [',  # an object cut off mid-value
    b"[" * 5000,  # nested deeper than a JSON decoder recurses
    b"1" * 5000,  # an integer longer than Python converts
    b"plain text, not JSON",
)
"""Malformed bodies that are valid UTF-8, so every broker can carry them."""

BINARY_BODIES = (b"\xff\xfe not UTF-8 \xc3(",)
"""Bodies that are not UTF-8, for brokers that carry any bytes."""


@scenario(needs.raw_publisher)
async def foreign_malformed_body(h: Harness) -> None:
    """Bodies a foreign producer wrote straight to the broker (truncated JSON, deep nesting,
    plain text and, where the broker carries bytes, bytes that are not UTF-8), then a message
    published as usual: every one is received, a malformed one with its text as the payload
    (bytes that are not UTF-8 decoded with replacement characters), and each can be acked."""
    publisher = h.capabilities.raw_publisher
    assert publisher is not None
    bodies = TEXT_BODIES + (BINARY_BODIES if publisher.binary else ())
    location = await h.location("foreign")
    follower = Message(payload={"after": "foreign bodies"}, headers={"conformance": "follower"})
    subscription = None if h.capabilities.persistent else await h.subscribe(location)
    try:
        await publisher.publish(h, location, bodies)
    except Exception as exc:
        raise AssertionError(
            f"foreign body: the raw publisher failed: {type(exc).__name__}: {exc}"
        ) from exc
    await h.publish_all(location, [follower])
    subscription = subscription or await h.subscribe(location)

    await consume_foreign(h, subscription, bodies, follower)


async def consume_foreign(
    h: Harness, subscription: Subscription, bodies: tuple[bytes, ...], follower: Message
) -> None:
    """Receive and ack until each body's text and ``follower`` arrived, failing on anything
    else, on a settlement that raises, and after ``idle_timeout`` without a delivery; then
    check that nothing acked comes back."""
    texts = list(dict.fromkeys(body.decode("utf-8", "replace") for body in bodies))
    arrived: set[str] = set()  # the texts received, and the follower's id
    settled: set[str] = set()  # message ids acked
    last_progress = time.monotonic()
    while len(arrived) < len(texts) + 1:
        if time.monotonic() - last_progress > h.idle_timeout:
            missing = [repr(text[:40]) for text in texts if text not in arrived]
            if follower.id not in arrived:
                missing.append("the message published after them")
            raise AssertionError(
                f"foreign body: no delivery for {h.idle_timeout:g}s; missing: " + ", ".join(missing)
            )
        delivery = await subscription.receive(timeout=POLL)
        if delivery is None:
            continue
        last_progress = time.monotonic()
        message = delivery.message
        if message.id == follower.id:
            mismatch = describe_mismatch(follower, message)
            assert mismatch is None, (
                f"foreign body: the message after them arrived altered: {mismatch}"
            )
            which = follower.id
        elif isinstance(message.payload, str) and message.payload in texts:
            which = message.payload
        else:
            raise AssertionError(
                f"foreign body: message {message.id!r} arrived with payload "
                f"{message.payload!r:.100}, which is neither a foreign body's text nor the "
                "message published after them (a malformed body must be delivered as its text)"
            )
        if which in arrived and h.capabilities.exactly_once:
            raise AssertionError(
                f"foreign body: {message.payload!r:.60} was delivered again after it was "
                "acked, but the backend declares exactly_once"
            )
        arrived.add(which)
        await ack(delivery)
        settled.add(message.id)
    await expect_nothing(
        h,
        subscription,
        QUIET_WINDOW,
        "foreign body: a delivery came back after it was acked",
        tolerate=settled,
    )


async def ack(delivery: Delivery) -> None:
    try:
        await delivery.ack()
    except Exception as exc:
        raise AssertionError(
            f"foreign body: acking {delivery.message.id!r} (payload "
            f"{delivery.message.payload!r:.60}) raised {type(exc).__name__}: {exc}"
        ) from exc
