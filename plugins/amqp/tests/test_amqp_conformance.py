"""The conformance kit against RabbitMQ, in full mode, for both queue types.

What RabbitMQ promises, as configured here: messages persist in durable queues, one queue
delivers in publish order to a consumer that settles one message at a time, a nack past
``max-deliveries`` dead-letters to ``<queue>.dlq``. Not promised: consumer groups (every
consumer of one queue competes; separate groups are separate queues, which a location names
with ``bindQueueName``), replay, exactly-once (a message whose ack was lost with the connection
comes again), and a visibility timeout (an unacked message stays with its consumer until the
channel closes), so those scenarios are skipped.

Foreign messages are published with a plain aio-pika channel: no message id, no headers, the
body's bytes as they are.

``amqp_exchange`` runs the kit too: each location is a topic exchange with its own bound queue
and routing key; its dead letters are read by binding the bound queue's dead-letter queue to a
fanout exchange of their own.

The broker-restart scenario runs in its own class against a private RabbitMQ node that the
test restarts twice mid-stream (the shared broker is never restarted).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import parse_qs

import aio_pika
import pytest
from conductor_events_amqp import plugin as amqp_plugin
from conductor_events_amqp.client import AmqpQueueClient
from rabbit import Broker, PrivateNode

from conductor_events.testing import (
    Capabilities,
    DeadLetterSupport,
    Harness,
    QueueConformance,
    RawPublisher,
)

MAX_DELIVERIES = 3
MAX_MESSAGE_SIZE = 256 * 1024


async def publish_with_aio_pika(harness: Harness, location: str, bodies: Sequence[bytes]) -> None:
    """A foreign producer: plain aio-pika with publisher confirms, no id, no headers."""
    client = harness.client
    assert isinstance(client, AmqpQueueClient)
    target = client.location(location)
    connection = await aio_pika.connect(host=client.settings.hosts, port=client.settings.port)
    try:
        channel = await connection.channel()
        if target.kind == "queue":
            exchange, routing_key = channel.default_exchange, target.name
        else:
            exchange, routing_key = await channel.get_exchange(target.name), target.routing_key
        for body in bodies:
            await exchange.publish(aio_pika.Message(body), routing_key, mandatory=True)
    finally:
        await connection.close()


async def delete_declared(harness: Harness, broker: Broker) -> None:
    """Every queue and exchange the scenario's clients declared."""
    queues: set[str] = set()
    exchanges: set[str] = set()
    for client in (harness.client,):
        assert isinstance(client, AmqpQueueClient)
        queues |= client.declared_queues
        exchanges |= client.declared_exchanges
    await broker.delete(queues, exchanges)


class TestAmqpQueueConformance(QueueConformance):
    broker: Broker
    plugin = amqp_plugin
    plugin_name = "amqp"
    queue_type = "amqp_queue"
    capabilities = Capabilities(
        persistent=True,
        ordered=True,
        dead_letter=DeadLetterSupport(
            location=lambda queue: f"{queue}.dlq", max_deliveries=MAX_DELIVERIES
        ),
        raw_publisher=RawPublisher(publish_with_aio_pika),
    )
    skip_scenarios = {
        "reconnect": "runs in TestAmqpQueueRestartConformance, against a private RabbitMQ node",
    }

    @pytest.fixture
    def queue_properties(self, rabbitmq: Broker) -> dict[str, str]:
        self.broker = rabbitmq
        return rabbitmq.properties(
            **{
                "max-deliveries": str(MAX_DELIVERIES),
                "max-message-size": str(MAX_MESSAGE_SIZE),
            },
        )

    async def make_location(self, harness: Harness, hint: str) -> str:
        """A fresh queue, declared (with its dead-letter queue) before anything is published,
        as an operator or a first subscriber would."""
        location = await super().make_location(harness, hint)
        client = harness.client
        assert isinstance(client, AmqpQueueClient)
        await client.declare(location)
        return location

    async def delete_location(self, harness: Harness, location: str) -> None:
        await delete_declared(harness, self.broker)


def exchange_dead_letters(location: str) -> str:
    """An ``amqp_exchange`` location that reads the dead-letter queue of ``location``'s bound
    queue: a fanout exchange of its own with that queue bound to it (nothing publishes there;
    binding it is only how the grammar names an existing queue)."""
    name = location.partition("?")[0]
    bound = parse_qs(location.partition("?")[2])["bindQueueName"][0]
    return f"{name}.dlx?exchangeType=fanout&bindQueueName={bound}.dlq"


class TestAmqpExchangeConformance(TestAmqpQueueConformance):
    queue_type = "amqp_exchange"
    capabilities = Capabilities(
        persistent=True,
        ordered=True,
        dead_letter=DeadLetterSupport(
            location=exchange_dead_letters, max_deliveries=MAX_DELIVERIES
        ),
        raw_publisher=RawPublisher(publish_with_aio_pika),
    )

    async def make_location(self, harness: Harness, hint: str) -> str:
        """A fresh topic exchange with its own bound queue and routing key, declared first so
        that messages published before a consumer subscribes wait in the bound queue."""
        name = await QueueConformance.make_location(self, harness, hint)
        location = f"{name}?exchangeType=topic&routingKey={name}.rk&bindQueueName={name}.q"
        client = harness.client
        assert isinstance(client, AmqpQueueClient)
        await client.declare(location)
        return location


async def restart_node(harness: Harness) -> None:
    suite = harness.suite
    assert isinstance(suite, TestAmqpQueueRestartConformance)
    await suite.node.restart_async()


class TestAmqpQueueRestartConformance(QueueConformance):
    """Only the reconnect scenario (conftest.py deselects the others here): a private node is
    stopped and started again twice mid-stream, keeping its data directory."""

    plugin = amqp_plugin
    plugin_name = "amqp"
    queue_type = "amqp_queue"
    idle_timeout = 60.0  # a node takes several seconds to stop and start again
    capabilities = Capabilities(persistent=True, ordered=True, restart_broker=restart_node)
    node: PrivateNode

    @pytest.fixture
    def queue_properties(self, private_node: PrivateNode) -> dict[str, str]:
        self.node = private_node
        return private_node.properties()

    async def make_location(self, harness: Harness, hint: str) -> str:
        location = await super().make_location(harness, hint)
        client = harness.client
        assert isinstance(client, AmqpQueueClient)
        await client.declare(location)
        return location
