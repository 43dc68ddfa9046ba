"""Registers the ``amqp_queue`` and ``amqp_exchange`` queue types, both configured by
``conductor.event-queues.amqp.*`` (one model, so one section). Importing this imports no
aio-pika: ``connect`` does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conductor_events import hookimpl
from conductor_events.backend import QueueClient, QueueType
from conductor_events_amqp.settings import EXCHANGE_TYPE, QUEUE_TYPE, AmqpSettings


def connect_queue(settings: AmqpSettings) -> QueueClient:
    """The ``amqp_queue`` client; aio-pika is imported here, on first use of the type."""
    from conductor_events_amqp.client import AmqpQueueClient

    return AmqpQueueClient(settings, "queue", QUEUE_TYPE)


def connect_exchange(settings: AmqpSettings) -> QueueClient:
    """The ``amqp_exchange`` client; aio-pika is imported here, on first use of the type."""
    from conductor_events_amqp.client import AmqpQueueClient

    return AmqpQueueClient(settings, "exchange", EXCHANGE_TYPE)


@hookimpl
def register_queue_types(register: Callable[[QueueType[Any]], None]) -> None:
    register(
        QueueType(
            name=QUEUE_TYPE,
            settings=AmqpSettings,
            connect=connect_queue,
            description="RabbitMQ queues (AMQP 0-9-1, aio-pika), publisher confirms",
            locations="a queue name, optionally `?durable=false&maxPriority=10...`",
        )
    )
    register(
        QueueType(
            name=EXCHANGE_TYPE,
            settings=AmqpSettings,
            connect=connect_exchange,
            description="RabbitMQ exchanges and the queues bound to them (AMQP 0-9-1, aio-pika)",
            locations="`<exchange>?exchangeType=topic&routingKey=<key>&bindQueueName=<queue>`",
        )
    )
