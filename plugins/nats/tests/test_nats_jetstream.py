"""JetStream (``jsm``) beyond the kit: dead-lettering a message nobody settled, a dead-letter
publish that fails, extending past one ack-wait, duplicate publishes, headers NATS cannot
carry, and a consumer name that another subject already uses."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from conductor_events_nats.jetstream import JetStreamQueueClient
from conductor_events_nats.settings import stream_name_for

from conductor_events.backend import Delivery, DeliveryState, SubscribeOptions, Subscription
from conductor_events.errors import QueueError
from conductor_events.messages import Message

GUARD = 60.0
"""A hang fails the test instead of blocking the run (not a timing assertion)."""

HOLD = SubscribeOptions(max_in_flight=10, prefetch=1, drain_timeout=0)

Make = Callable[..., JetStreamQueueClient]


async def dead_lettered(main: Subscription, dead_letters: Subscription) -> Delivery:
    """Keep the main subscription fetching (a message past the limit is dead-lettered when it
    arrives) until the dead-letter subscription receives one; nothing may reach ``main``."""
    async with asyncio.timeout(GUARD):
        while True:
            delivery = await main.receive(timeout=0.2)
            assert delivery is None, f"{delivery.message.id} was delivered past the limit"
            dead = await dead_letters.receive(timeout=0.2)
            if dead is not None:
                return dead


async def stored(raw: Any, subject: str) -> int:
    info = await raw.jsm().stream_info(stream_name_for(subject))
    return int(info.state.messages)


async def test_a_message_never_settled_is_dead_lettered_past_max_deliver(
    make_jsm: Make, subject: str, drop_streams: Callable[[str], None]
) -> None:
    drop_streams(subject)
    client = make_jsm(ack_wait="500ms", max_deliver=2)
    sent = Message({"stuck": True}, headers={"tenant": "Zürich"})
    assert (await client.publish(subject, [sent])).ok
    subscription = await client.subscribe(subject, HOLD)
    for attempt in (1, 2):  # received and left unsettled: the ack-wait expires each time
        delivery = await subscription.receive(timeout=10)
        assert delivery is not None
        assert delivery.attempt == attempt
    # the third delivery is past max-deliver: dead-lettered on arrival, never handed out
    dead_letters = await client.subscribe(f"{subject}.dlq", HOLD)
    dead = await dead_lettered(subscription, dead_letters)
    assert dead.message.id == sent.id
    assert dead.message.payload == sent.payload
    assert dead.message.headers == {"tenant": "Zürich"}
    assert dead.dead_letter_reason is not None
    assert "delivered 3 times without being acked" in dead.dead_letter_reason
    await dead.ack()
    await dead_letters.close()
    await subscription.close()


async def test_a_failed_dead_letter_publish_leaves_the_message_unacked(
    make_jsm: Make, subject: str, raw: Any, drop_streams: Callable[[str], None]
) -> None:
    drop_streams(subject)
    await raw.jsm().add_stream(name=stream_name_for(subject), subjects=[subject])
    # no stream stores the dead-letter subject, and none may be created
    client = make_jsm(auto_create_streams=False, max_deliver=1)
    sent = Message({"poison": True})
    assert (await client.publish(subject, [sent])).ok
    subscription = await client.subscribe(subject, HOLD)

    first = await subscription.receive(timeout=10)
    assert first is not None
    with pytest.raises(QueueError, match=r"dead-lettering .* failed: .*not acked"):
        await first.dead_letter("poison")
    assert first.state is DeliveryState.PENDING
    await first.nack(reason="still poison")  # at the limit: dead-lettering fails, NAK instead
    assert await stored(raw, subject) == 1

    # once a stream stores the dead-letter subject, the next delivery (past the limit) is
    # dead-lettered on arrival: the message was kept, not acked or dropped
    dead_subject = f"{subject}.dlq"
    await raw.jsm().add_stream(name=stream_name_for(dead_subject), subjects=[dead_subject])
    dead_letters = await client.subscribe(dead_subject, HOLD)
    dead = await dead_lettered(subscription, dead_letters)
    assert dead.message.id == sent.id
    await dead.ack()
    await dead_letters.close()
    await subscription.close()


async def test_extend_longer_than_one_ack_wait_keeps_the_message_away(
    make_jsm: Make, subject: str, drop_streams: Callable[[str], None]
) -> None:
    drop_streams(subject)
    client = make_jsm(ack_wait="2s")
    sent = Message({"slow": True})
    assert (await client.publish(subject, [sent])).ok
    holder = await client.subscribe(subject, HOLD)
    held = await holder.receive(timeout=10)
    assert held is not None
    await held.extend(6.0)  # one call, three ack-waits
    watcher = await client.subscribe(subject, HOLD)
    assert await watcher.receive(timeout=4.5) is None, "redelivered while extended"
    await held.ack()
    await watcher.close()
    await holder.close()


async def test_a_message_published_twice_with_one_id_is_stored_once(
    make_jsm: Make, subject: str, raw: Any, drop_streams: Callable[[str], None]
) -> None:
    drop_streams(subject)
    client = make_jsm()
    message = Message({"task": "t-1"}, id="task-1")
    first = await client.publish(subject, [message])
    again = await client.publish(subject, [message])
    assert first.published == again.published == ["task-1"]
    assert await stored(raw, subject) == 1


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({"note": " padded"}, "surrounding whitespace or a line break"),
        ({"note": "two\nlines"}, "surrounding whitespace or a line break"),
        ({"Nats-Msg-Id": "x"}, "reserved"),
        ({"bad name": "x"}, "not a NATS header token"),
    ],
)
async def test_headers_nats_cannot_carry_fail_that_message_alone(
    make_jsm: Make,
    subject: str,
    drop_streams: Callable[[str], None],
    headers: dict[str, str],
    why: str,
) -> None:
    drop_streams(subject)
    client = make_jsm()
    bad = Message({"n": 1}, headers=headers)
    good = Message({"n": 2}, headers={"fine": "yes"})
    result = await client.publish(subject, [bad, good])
    assert result.published == [good.id]
    assert [failure.message_id for failure in result.failed] == [bad.id]
    assert why in result.failed[0].reason


async def test_a_consumer_name_reading_another_subject_is_refused(make_jsm: Make, raw: Any) -> None:
    stream = f"SHARED-{stream_name_for('x')}-{id(raw)}"
    await raw.jsm().add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
    try:
        client = make_jsm()
        first, second = f"{stream.lower()}.a", f"{stream.lower()}.b"
        subscription = await client.subscribe(first, HOLD)
        with pytest.raises(QueueError, match=r"reads subject .*a', not .*b'"):
            await client.subscribe(second, HOLD)
        other = await client.subscribe(f"{second}:b-readers", HOLD)  # its own consumer works
        await other.close()
        await subscription.close()
    finally:
        await raw.jsm().delete_stream(stream)


async def test_a_body_that_is_not_json_is_delivered_as_its_text(
    make_jsm: Make, subject: str, raw: Any, drop_streams: Callable[[str], None]
) -> None:
    drop_streams(subject)
    client = make_jsm()
    await client.stream_for(subject)
    context = raw.jetstream()
    await context.publish(subject, b"not json {")
    await context.publish(subject, b"\xff\xfe")
    subscription = await client.subscribe(subject, HOLD)
    payloads = []
    for _ in range(2):
        delivery = await subscription.receive(timeout=10)
        assert delivery is not None
        payloads.append(delivery.message.payload)
        await delivery.ack()
    assert payloads == ["not json {", "\ufffd\ufffd"]
    await subscription.close()
