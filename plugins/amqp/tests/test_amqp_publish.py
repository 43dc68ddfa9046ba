"""Publishing: confirmed by the broker or reported failed, with Conductor's message properties,
and an EVENT task that FAILS when its message was not confirmed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import aio_pika
import pytest
from conductor_events_amqp.client import AmqpQueueClient
from rabbit import Broker, unique

from conductor_events.errors import QueueError
from conductor_events.event_queues import EventQueues
from conductor_events.event_task import EventTask, TaskStatus, execute_event_task
from conductor_events.messages import Message
from conductor_events.plugins import PluginHost


async def take(broker: Broker, queue: str) -> aio_pika.abc.AbstractIncomingMessage:
    """One message from ``queue`` with a plain aio-pika client (acked)."""
    connection = await broker.connect()
    try:
        channel = await connection.channel()
        declared = await channel.get_queue(queue, ensure=True)
        found = await declared.get(no_ack=True, fail=False, timeout=10)
        assert found is not None, f"nothing in queue {queue}"
        return found
    finally:
        await connection.close()


async def test_a_publish_declares_the_queue_and_carries_conductors_properties(
    client: AmqpQueueClient, rabbitmq: Broker
) -> None:
    queue = unique("props")
    message = Message({"order": 7, "name": "Zoë"}, headers={"trace-id": "ä-1"}, key="k-1")
    result = await client.publish(f"{queue}?durable=false", [message])
    assert result.published == [message.id]
    assert not result.failed
    received = await take(rabbitmq, queue)
    assert received.body == message.body()
    assert received.message_id == message.id
    assert received.content_type == "application/json"
    assert received.content_encoding == "UTF-8"
    assert received.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert received.headers["trace-id"] == "ä-1"
    assert received.headers["x-conductor-key"] == "k-1"


async def test_delivery_mode_from_the_location(client: AmqpQueueClient, rabbitmq: Broker) -> None:
    queue = unique("mode")
    await client.publish(f"{queue}?deliveryMode=1", [Message(1)])
    received = await take(rabbitmq, queue)
    assert received.delivery_mode == aio_pika.DeliveryMode.NOT_PERSISTENT


async def test_an_exchange_routes_by_the_locations_routing_key(
    make_client: Callable[..., AmqpQueueClient], rabbitmq: Broker
) -> None:
    client = make_client(exchange=True)
    name = unique("ex")
    location = f"{name}?exchangeType=direct&routingKey=orders.created&bindQueueName={name}.q"
    result = await client.publish(location, [Message({"n": 1})])
    assert result.ok
    received = await take(rabbitmq, f"{name}.q")
    assert received.routing_key == "orders.created"
    assert received.exchange == name


async def test_a_message_no_queue_receives_is_failed_not_dropped(
    make_client: Callable[..., AmqpQueueClient],
) -> None:
    """An exchange with no queue bound for the key: the broker returns the message
    (``mandatory``), so the publish reports it failed instead of confirming a message that
    went nowhere."""
    client = make_client(exchange=True)
    message = Message({"n": 1})
    result = await client.publish(f"{unique('nobody')}?routingKey=rk", [message])
    assert result.published == []
    (failure,) = result.failed
    assert failure.message_id == message.id
    assert "unroutable" in failure.reason
    assert "routing key 'rk'" in failure.reason


async def test_too_large_is_failed_per_message(
    make_client: Callable[..., AmqpQueueClient], rabbitmq: Broker
) -> None:
    client = make_client(max_message_size=100)
    queue = unique("size")
    small, large = Message("x" * 50), Message("x" * 200)
    result = await client.publish(queue, [small, large])
    assert result.published == [small.id]
    (failure,) = result.failed
    assert failure.message_id == large.id
    assert "exceeds the limit of 100 bytes" in failure.reason
    assert "conductor.event-queues.amqp.max-message-size" in failure.reason
    assert await rabbitmq.depth(queue) == 1


async def test_event_task_completes_and_fails_by_the_brokers_answer(
    plugins: PluginHost,
    rabbitmq: Broker,
    properties_file: Callable[[dict[str, str]], Path],
) -> None:
    name = unique("event")
    path = properties_file(
        {
            **rabbitmq.properties(),
            "conductor.event-queues.amqp.enabled": "true",
        }
    )
    routed = f"amqp_exchange:{name}?routingKey=done&bindQueueName={name}.q"
    unrouted = f"amqp_exchange:{name}?routingKey=nobody-listens"
    try:
        async with EventQueues.from_files([path], plugins=plugins, environ={}) as queues:
            ok = await execute_event_task(EventTask(sink=routed, input_parameters={"a": 1}), queues)
            failed = await execute_event_task(
                EventTask(sink=unrouted, input_parameters={"a": 2}), queues
            )
        assert ok.status is TaskStatus.COMPLETED
        assert ok.output_data["event_produced"] == routed
        assert failed.status is TaskStatus.FAILED
        assert failed.reason_for_incompletion is not None
        assert "unroutable" in failed.reason_for_incompletion
        assert await rabbitmq.depth(f"{name}.q") == 1
    finally:
        await rabbitmq.delete([f"{name}.q", f"{name}.q.dlq"], [name])


async def test_a_queue_declared_otherwise_is_a_clear_error_and_the_client_goes_on(
    client: AmqpQueueClient, rabbitmq: Broker
) -> None:
    """RabbitMQ refuses to declare a queue again with other arguments, and closes the channel
    for it: the publish names the queue and the arguments, and the next publish (another
    queue) works on the reopened channel."""
    taken = unique("taken")
    connection = await rabbitmq.connect()
    try:
        channel = await connection.channel()
        await channel.declare_queue(taken, durable=False)
    finally:
        await connection.close()
    try:
        with pytest.raises(QueueError) as error:
            await client.publish(taken, [Message(1)])
        text = str(error.value)
        assert text.startswith(f"amqp_queue: cannot declare queue '{taken}' (durable=True")
        assert "PRECONDITION_FAILED" in text
        other = unique("other")
        assert (await client.publish(other, [Message(2)])).ok
        assert await rabbitmq.depth(other) == 1
    finally:
        await rabbitmq.delete([taken])
