"""Publishing test messages and consuming them back, with idle timeouts and duplicate handling.

Timeouts are idle timeouts, as in Watermill: a scenario fails when no delivery at all arrived
for ``idle_timeout`` seconds while messages were still missing, however long the whole run
takes. That keeps slow brokers passing and hung ones failing.

Duplicates (a message delivered again after it was acked) are what at-least-once allows: they
are acked and counted, and removed by message id. A backend that declares ``exactly_once`` fails
on the first one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from conductor_events.backend import Delivery, DeliveryHandle, Subscription
from conductor_events.messages import Message
from conductor_events.testing.harness import Harness

POLL = 0.2
"""Seconds one ``receive`` waits, so consumers notice completion and the idle timeout."""

QUIET_WINDOW = 0.5
"""Seconds a subscription must stay silent where nothing may arrive. Such checks can only
pass wrongly when a message is late, never fail wrongly, so the window is kept short."""

Handler = Callable[[Delivery], Awaitable[bool]]
"""Settles one delivery; returns True when the message counts as consumed (it was acked)."""


def make_messages(
    count: int,
    tag: str,
    *,
    key: Callable[[int], str | None] | None = None,
) -> list[Message]:
    """``count`` distinct messages whose payload and headers say which they are."""
    return [
        Message(
            payload={"scenario": tag, "seq": seq, "text": f"{tag} nº {seq} ✓"},
            headers={"conformance-seq": str(seq)},
            key=key(seq) if key is not None else None,
        )
        for seq in range(count)
    ]


async def ack(delivery: Delivery) -> bool:
    """The default handler: ack and count it."""
    await delivery.ack()
    return True


@dataclass
class Consumed:
    """What a consume call received.

    Attributes:
        messages: the consumed messages by id, in the order they were consumed.
        deliveries: every delivery's message id, in arrival order, duplicates included.
        duplicates: deliveries of messages already consumed.
    """

    messages: dict[str, Message] = field(default_factory=dict)
    deliveries: list[str] = field(default_factory=list)
    duplicates: int = 0


class _Consumer:
    """Shared state of the subscriptions consuming one expected set of messages."""

    def __init__(
        self,
        harness: Harness,
        expected: Mapping[str, Message],
        handler: Handler,
        what: str,
        idle_timeout: float,
        result: Consumed,
        limit: int | None,
    ) -> None:
        self.harness = harness
        self.expected = expected
        self.handler = handler
        self.what = what
        self.idle_timeout = idle_timeout
        self.result = result
        self.limit = limit
        self.consumed_here = 0
        self.problems: list[str] = []
        self.last_progress = time.monotonic()

    @property
    def done(self) -> bool:
        if self.limit is not None and self.consumed_here >= self.limit:
            return True
        return len(self.result.messages) >= len(self.expected)

    @property
    def stop(self) -> bool:
        return (
            self.done
            or bool(self.problems)
            or time.monotonic() - self.last_progress > self.idle_timeout
        )

    async def run(self, subscription: Subscription) -> None:
        while not self.stop:
            delivery = await subscription.receive(timeout=min(POLL, self.idle_timeout))
            if delivery is None:
                continue
            self.last_progress = time.monotonic()
            try:
                await self.accept(delivery)
            except Exception as exc:
                self.problems.append(
                    f"settling {delivery.message.id} raised {type(exc).__name__}: {exc}"
                )
                raise

    async def accept(self, delivery: Delivery) -> None:
        message = delivery.message
        self.result.deliveries.append(message.id)
        handle: object = delivery.handle  # typed, but a backend's code may not be
        if not isinstance(handle, DeliveryHandle):
            self.problems.append(
                f"message {message.id} arrived with a {type(handle).__name__} as its "
                "handle: _fetch must build Delivery(message, attempt, handle) with a "
                "DeliveryHandle of the backend's"
            )
        sent = self.expected.get(message.id)
        if sent is None:
            self.problems.append(
                f"received message {message.id} that this scenario never published "
                f"to this location (payload {message.payload!r:.200})"
            )
            await delivery.ack()
            return
        mismatch = describe_mismatch(sent, message)
        if mismatch:
            self.problems.append(f"message {message.id} arrived altered: {mismatch}")
        if message.id in self.result.messages:
            self.result.duplicates += 1
            await delivery.ack()
            if self.harness.capabilities.exactly_once:
                self.problems.append(
                    f"message {message.id} was delivered again after it was acked, "
                    f"but the backend declares exactly_once (attempt {delivery.attempt})"
                )
            return
        if await self.handler(delivery):
            self.result.messages[message.id] = message
            self.consumed_here += 1


async def consume(
    harness: Harness,
    subscriptions: Sequence[Subscription],
    expected: Sequence[Message],
    *,
    what: str,
    handler: Handler = ack,
    idle_timeout: float | None = None,
    consumed: Consumed | None = None,
    limit: int | None = None,
) -> Consumed:
    """Consume from competing subscriptions until every expected message was consumed.

    Fails on a message not in ``expected``, on a payload or header that changed on the way,
    on a duplicate when the backend declares ``exactly_once``, and when messages are still
    missing after ``idle_timeout`` seconds without any delivery.

    ``consumed`` continues an earlier call's result over the same ``expected`` messages (those
    it holds count as consumed, and deliveries of them as duplicates); ``limit`` returns once
    this call consumed that many.
    """
    idle = harness.idle_timeout if idle_timeout is None else idle_timeout
    by_id = {message.id: message for message in expected}
    result = Consumed() if consumed is None else consumed
    consumer = _Consumer(harness, by_id, handler, what, idle, result, limit)
    await asyncio.gather(*(consumer.run(subscription) for subscription in subscriptions))
    if consumer.problems:
        shown = "\n  ".join(consumer.problems[:10])
        more = len(consumer.problems) - 10
        raise AssertionError(f"{what}:\n  {shown}" + (f"\n  (and {more} more)" if more > 0 else ""))
    if not consumer.done:
        missing = [m for m in expected if m.id not in consumer.result.messages]
        raise AssertionError(
            f"{what}: {len(missing)} of {len(expected)} messages did not arrive "
            f"(no delivery for {idle:g}s); first missing: "
            + ", ".join(f"{m.id} {m.payload!r:.60}" for m in missing[:3])
        )
    return consumer.result


async def publish_and_subscribe(
    harness: Harness,
    location: str,
    messages: Sequence[Message],
    *,
    subscribers: int = 1,
    **options: Any,
) -> list[Subscription]:
    """Publish, then subscribe, on a persistent backend (so the messages must have waited);
    subscribe first on one that is not (its messages go only to open subscriptions)."""
    if harness.capabilities.persistent:
        await harness.publish_all(location, messages)
        return await harness.subscribe_many(location, subscribers, **options)
    subscriptions = await harness.subscribe_many(location, subscribers, **options)
    await harness.publish_all(location, messages)
    return subscriptions


def describe_mismatch(sent: Message, received: Message) -> str | None:
    """What differs between a published message and its delivery, or ``None``."""
    if received.payload != sent.payload:
        return f"payload {received.payload!r:.200} != published {sent.payload!r:.200}"
    if dict(received.headers) != dict(sent.headers):
        return f"headers {dict(received.headers)!r} != published {dict(sent.headers)!r}"
    return None


async def receive_one(harness: Harness, subscription: Subscription, what: str) -> Delivery:
    """The next delivery, failing after the idle timeout."""
    delivery = await subscription.receive(timeout=harness.idle_timeout)
    if delivery is None:
        raise AssertionError(f"{what}: nothing arrived within {harness.idle_timeout:g}s")
    return delivery


async def expect_nothing(
    harness: Harness,
    subscription: Subscription,
    window: float,
    what: str,
    *,
    tolerate: Collection[str] = (),
) -> None:
    """Fail if a delivery arrives within ``window`` seconds.

    Redeliveries of ``tolerate`` (ids already consumed) are acked and allowed, unless the
    backend declares ``exactly_once``.
    """
    deadline = time.monotonic() + window
    while (remaining := deadline - time.monotonic()) > 0:
        delivery = await subscription.receive(timeout=remaining)
        if delivery is None:
            return
        if delivery.message.id in tolerate and not harness.capabilities.exactly_once:
            await delivery.ack()
            continue
        raise AssertionError(
            f"{what}: message {delivery.message.id} (payload "
            f"{delivery.message.payload!r:.100}, attempt {delivery.attempt}) arrived"
        )
