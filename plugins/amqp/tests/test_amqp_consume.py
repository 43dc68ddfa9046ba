"""Consuming: bodies that are not JSON, attempts counted across nacks, delayed redelivery
through a delay queue, release on close."""

from __future__ import annotations

import aio_pika
from conductor_events_amqp.client import AmqpQueueClient
from conductor_events_amqp.consume import AmqpHandle
from rabbit import Broker, unique

from conductor_events.backend import SubscribeOptions
from conductor_events.messages import Message

WAIT = 10.0


async def raw_publish(broker: Broker, queue: str, message: aio_pika.Message) -> None:
    connection = await broker.connect()
    try:
        channel = await connection.channel()
        await channel.default_exchange.publish(message, queue)
    finally:
        await connection.close()


async def test_bodies_that_are_not_json_arrive_as_text(
    client: AmqpQueueClient, rabbitmq: Broker
) -> None:
    queue = unique("text")
    await client.declare(queue)
    bodies = [b'{"truncated": ', b"plain words", b"\xff\xfe not utf-8", b'{"ok": true}']
    for body in bodies:
        await raw_publish(rabbitmq, queue, aio_pika.Message(body))
    subscription = await client.subscribe(queue, SubscribeOptions())
    payloads = []
    for _ in bodies:
        delivery = await subscription.receive(timeout=WAIT)
        assert delivery is not None
        payloads.append(delivery.message.payload)
        assert delivery.message.headers == {}
        await delivery.ack()
    await subscription.close()
    assert payloads == ['{"truncated": ', "plain words", "\ufffd\ufffd not utf-8", {"ok": True}]
    assert await rabbitmq.depth(queue) == 0


async def test_a_foreign_message_without_an_id_gets_a_stable_one(
    client: AmqpQueueClient, rabbitmq: Broker
) -> None:
    queue = unique("noid")
    await client.declare(queue)
    await raw_publish(rabbitmq, queue, aio_pika.Message(b"1"))
    subscription = await client.subscribe(queue, SubscribeOptions())
    first = await subscription.receive(timeout=WAIT)
    assert first is not None
    await first.nack()  # republished: the copy keeps the id it was given
    second = await subscription.receive(timeout=WAIT)
    assert second is not None
    assert second.message.id == first.message.id
    assert second.attempt == 2
    await second.ack()
    await subscription.close()


async def test_nack_counts_attempts_and_keeps_the_message(client: AmqpQueueClient) -> None:
    queue = unique("attempts")
    message = Message({"n": 1}, headers={"h": "v"}, key="k")
    await client.publish(queue, [message])
    subscription = await client.subscribe(queue, SubscribeOptions())
    seen = []
    for _ in range(3):
        delivery = await subscription.receive(timeout=WAIT)
        assert delivery is not None
        seen.append((delivery.attempt, delivery.message))
        if delivery.attempt < 3:
            await delivery.nack()
        else:
            await delivery.ack()
    await subscription.close()
    assert [attempt for attempt, _ in seen] == [1, 2, 3]
    for _, received in seen:
        assert received.id == message.id
        assert received.payload == {"n": 1}
        assert received.headers == {"h": "v"}
        assert received.key == "k"


async def test_a_delayed_nack_waits_in_a_delay_queue_then_returns(
    client: AmqpQueueClient, rabbitmq: Broker
) -> None:
    queue = unique("delay")
    message = Message({"n": 1})
    await client.publish(queue, [message])
    subscription = await client.subscribe(queue, SubscribeOptions())
    first = await subscription.receive(timeout=WAIT)
    assert first is not None
    await first.nack(delay=2.0)
    # The copy is confirmed in the delay queue before the original was acked.
    assert f"{queue}.delay.2000" in client.declared_queues
    assert await rabbitmq.depth(f"{queue}.delay.2000") + await rabbitmq.depth(queue) <= 1
    again = await subscription.receive(timeout=WAIT)
    assert again is not None
    assert again.message.id == message.id
    assert again.attempt == 2
    await again.ack()
    await subscription.close()
    assert await rabbitmq.depth(queue) == 0


async def test_closing_returns_unsettled_messages_without_counting_an_attempt(
    client: AmqpQueueClient,
) -> None:
    queue = unique("release")
    messages = [Message({"n": n}) for n in range(5)]
    await client.publish(queue, messages)
    subscription = await client.subscribe(
        queue, SubscribeOptions(max_in_flight=2, prefetch=3, drain_timeout=0.1)
    )
    held = await subscription.receive(timeout=WAIT)
    assert held is not None
    await subscription.close()  # one in flight, the rest prefetched: all returned
    later = await client.subscribe(queue, SubscribeOptions())
    ids = []
    for _ in messages:
        delivery = await later.receive(timeout=WAIT)
        assert delivery is not None
        assert delivery.attempt == 1
        assert isinstance(delivery.handle, AmqpHandle)
        ids.append(delivery.message.id)
        await delivery.ack()
    await later.close()
    assert sorted(ids) == sorted(m.id for m in messages)
