"""Core NATS (``nats``) beyond the kit: what a closing subscription does with what it holds,
queue groups, and a nack's redelivery from memory."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import structlog
from conductor_events_nats.core import NatsQueueClient

from conductor_events.backend import SubscribeOptions
from conductor_events.messages import Message

HOLD = SubscribeOptions(max_in_flight=10, prefetch=10, drain_timeout=0)


@pytest.fixture
def client(make_nats: Callable[..., NatsQueueClient]) -> NatsQueueClient:
    return make_nats()


async def test_a_closing_group_member_hands_what_it_holds_to_its_group(
    client: NatsQueueClient, subject: str
) -> None:
    first = await client.subscribe(f"{subject}:workers", HOLD)
    messages = [Message({"n": n}) for n in range(5)]
    result = await client.publish(subject, messages)
    assert result.ok
    held = await first.receive(timeout=5)  # one in flight, the others waiting in memory
    assert held is not None
    second = await client.subscribe(f"{subject}:workers", HOLD)
    bystander = await client.subscribe(f"{subject}:auditors", HOLD)
    await first.close()

    got: dict[str, object] = {}
    while len(got) < 5:
        delivery = await second.receive(timeout=10)
        assert delivery is not None, f"only {len(got)} of 5 reached the group's other member"
        got[delivery.message.id] = delivery.message.payload
        await delivery.ack()
    assert sorted(got) == sorted(m.id for m in messages)
    # another group had its own copies (none, as it subscribed late): it gets no hand-back
    assert await bystander.receive(timeout=0.5) is None
    await second.close()
    await bystander.close()


async def test_a_closing_subscription_without_a_group_drops_with_a_warning(
    client: NatsQueueClient, subject: str
) -> None:
    subscription = await client.subscribe(subject, HOLD)
    other = await client.subscribe(subject, HOLD)
    assert (await client.publish(subject, [Message({"n": n}) for n in range(3)])).ok
    assert await subscription.receive(timeout=5) is not None
    with structlog.testing.capture_logs() as logs:
        await subscription.close()
    dropped = [entry for entry in logs if entry["event"] == "nats.close.dropped"]
    assert [entry["count"] for entry in dropped] == [3]
    # the other subscription got each message once, and no second copy
    seen = []
    while (delivery := await other.receive(timeout=0.5)) is not None:
        seen.append(delivery.message.payload["n"])
        await delivery.ack()
    assert sorted(seen) == [0, 1, 2]
    await other.close()


async def test_a_nack_redelivers_from_memory_with_the_attempt_counted(
    client: NatsQueueClient, subject: str
) -> None:
    subscription = await client.subscribe(subject, HOLD)
    message = Message({"x": 1}, headers={"trace": "abc"}, key="k-1")
    assert (await client.publish(subject, [message])).ok
    first = await subscription.receive(timeout=5)
    assert first is not None
    assert first.attempt == 1
    await first.nack(delay=0.2, reason="try again")
    again = await subscription.receive(timeout=5)
    assert again is not None
    assert again.message == first.message
    assert again.message.key == "k-1"
    assert again.attempt == 2
    await again.ack()
    await subscription.close()


async def test_a_message_is_delivered_to_every_subscription_without_a_group(
    client: NatsQueueClient, subject: str
) -> None:
    subscriptions = [await client.subscribe(subject, HOLD) for _ in range(2)]
    [sent] = [Message({"fan": "out"})]
    assert (await client.publish(subject, [sent])).ok
    for subscription in subscriptions:
        delivery = await subscription.receive(timeout=5)
        assert delivery is not None
        assert delivery.message.id == sent.id
        await delivery.ack()
        await subscription.close()
