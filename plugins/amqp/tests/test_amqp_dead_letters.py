"""Dead letters: ``<queue>.dlq`` with the reason in a header; a dead-letter publish that fails
leaves the message unacked, never lost."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conductor_events_amqp.client import AmqpQueueClient
from conductor_events_amqp.consume import AmqpHandle
from rabbit import Broker, unique

from conductor_events.backend import DeliveryState, SubscribeOptions
from conductor_events.errors import QueueError
from conductor_events.messages import Message

WAIT = 10.0


async def test_past_the_attempt_limit_a_nack_dead_letters_with_the_reason(
    make_client: Callable[..., AmqpQueueClient], rabbitmq: Broker
) -> None:
    client = make_client(max_deliveries=2)
    queue = unique("dlq")
    message = Message({"n": 1}, headers={"h": "v"})
    await client.publish(queue, [message])
    subscription = await client.subscribe(queue, SubscribeOptions())
    for _ in range(2):
        delivery = await subscription.receive(timeout=WAIT)
        assert delivery is not None
        await delivery.nack(reason="handler failed: boom")
    await subscription.close()
    assert await rabbitmq.depth(queue) == 0

    dead = await client.subscribe(f"{queue}.dlq", SubscribeOptions())
    delivery = await dead.receive(timeout=WAIT)
    assert delivery is not None
    assert delivery.message.id == message.id
    assert delivery.message.payload == {"n": 1}
    assert delivery.message.headers == {"h": "v"}
    assert delivery.dead_letter_reason == "handler failed: boom"
    assert isinstance(delivery.handle, AmqpHandle)
    raw = delivery.handle.incoming.headers
    assert raw["x-conductor-dlq-queue"] == queue
    assert raw["x-conductor-dlq-attempts"] == 2
    await delivery.ack()
    await dead.close()
    assert f"{queue}.dlq.dlq" not in client.declared_queues


async def test_an_exchange_dead_letters_its_bound_queue(
    make_client: Callable[..., AmqpQueueClient], rabbitmq: Broker
) -> None:
    client = make_client(exchange=True)
    name = unique("exdlq")
    location = f"{name}?routingKey=rk&bindQueueName={name}.q"
    await client.publish(location, [Message({"n": 1})])
    subscription = await client.subscribe(location, SubscribeOptions())
    delivery = await subscription.receive(timeout=WAIT)
    assert delivery is not None
    await delivery.dead_letter("not for us")
    await subscription.close()
    assert await rabbitmq.depth(f"{name}.q") == 0
    assert await rabbitmq.depth(f"{name}.q.dlq") == 1


async def test_a_failed_dead_letter_publish_leaves_the_message_unacked(
    client: AmqpQueueClient, rabbitmq: Broker
) -> None:
    """The dead-letter queue is deleted under the consumer: the broker returns the dead letter
    as unroutable, so dead-lettering fails, the message stays pending, and closing the
    subscription puts it back in its queue."""
    queue = unique("dlqfail")
    message = Message({"n": 1})
    await client.publish(queue, [message])
    subscription = await client.subscribe(queue, SubscribeOptions(drain_timeout=0.1))
    delivery = await subscription.receive(timeout=WAIT)
    assert delivery is not None
    await rabbitmq.delete([f"{queue}.dlq"])
    with pytest.raises(QueueError) as error:
        await delivery.dead_letter("poison")
    text = str(error.value)
    assert f"dead-lettering message {message.id} to queue '{queue}.dlq' failed" in text
    assert "not acked" in text
    assert delivery.state is DeliveryState.PENDING
    await subscription.close()
    assert await rabbitmq.depth(queue) == 1
