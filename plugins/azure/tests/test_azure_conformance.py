"""The ``azure`` plugin against the conformance kit, on the Service Bus test broker.

Every location is a fresh queue (a topic for the consumer-group scenario, whose groups are
subscriptions) with a 2 s lock, so the visibility and lock-expiry scenarios take seconds.
Automatic lock renewal is off here: the kit checks that an unsettled message comes back once
its lock expires, and that Service Bus dead-letters it (``MaxDeliveryCountExceeded``) after the
queue's own MaxDeliveryCount, which is set above the plugin's nack limit. What is skipped, and why:

* ``replay``: Service Bus queues are not logs (the kit skips it from the capabilities);
* ``large_payload``: Service Bus limits the whole encoded message, application properties and
  message id included, not the payload, so there is no exact payload boundary for the kit's
  "one byte more is refused" check; the plugin's own tests cover oversized messages.

Foreign bodies are sent with the azure-servicebus SDK's own sender: a data body of the bytes as
they are, no message id and no application properties.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import pytest
from conductor_events_azure import plugin as azure_plugin
from servicebus_broker import ServiceBusBroker

from conductor_events.testing import (
    Capabilities,
    DeadLetterSupport,
    Harness,
    QueueConformance,
    RawPublisher,
)

LOCK_DURATION = 2.0
MAX_DELIVERIES = 3
ENTITY_MAX_DELIVERIES = MAX_DELIVERIES + 5
"""The queues' own MaxDeliveryCount: above the plugin's limit, so nacks dead-letter by the
plugin (with the nack's reason), and messages whose lock keeps expiring by Service Bus."""


async def restart_broker(harness: Harness) -> None:
    suite = harness.suite
    assert isinstance(suite, TestAzureConformance)
    suite.broker.restart()


async def send_with_sdk(harness: Harness, location: str, bodies: Sequence[bytes]) -> None:
    """A foreign producer: the SDK's sender, the body and nothing else."""
    from azure.servicebus import ServiceBusMessage
    from azure.servicebus.aio import ServiceBusClient

    suite = harness.suite
    assert isinstance(suite, TestAzureConformance)
    async with (
        ServiceBusClient.from_connection_string(suite.broker.connection_string()) as client,
        client.get_queue_sender(location) as sender,
    ):
        for body in bodies:
            await sender.send_messages(ServiceBusMessage(body))


class TestAzureConformance(QueueConformance):
    plugin = azure_plugin
    queue_type = "azure"
    short = True
    capabilities = Capabilities(
        persistent=True,
        ordered=True,
        consumer_groups=True,
        dead_letter=DeadLetterSupport(
            location=lambda name: f"{name}/$deadletterqueue",
            max_deliveries=MAX_DELIVERIES,
            expired_deliveries=ENTITY_MAX_DELIVERIES,
        ),
        visibility_timeout=LOCK_DURATION,
        restart_broker=restart_broker,
        raw_publisher=RawPublisher(send_with_sdk),
    )
    skip_scenarios: ClassVar[dict[str, str]] = {
        "large_payload": "Service Bus limits the whole encoded message (properties and id "
        "included), so a payload has no exact size boundary; covered by test_azure_queue",
    }
    broker: ServiceBusBroker

    @pytest.fixture
    def queue_properties(self, broker: ServiceBusBroker) -> dict[str, str]:
        self.broker = broker
        prefix = "conductor.event-queues.azure"
        return {
            f"{prefix}.connection-string": broker.connection_string(),
            f"{prefix}.receive.max-wait-time": "200ms",
            f"{prefix}.receive.max-lock-renewal-duration": "0",
            f"{prefix}.receive.max-deliveries": str(MAX_DELIVERIES),
            # No SDK prefetch: a prefetching receiver takes redelivered messages into its
            # buffer too, where a second subscription (as the kit's checks use) cannot see them.
            f"{prefix}.receive.prefetch-count": "0",
        }

    async def make_location(self, harness: Harness, hint: str) -> str:
        name = await super().make_location(harness, hint)
        if hint == "groups":
            self.broker.create_topic(name)
        else:
            self.broker.create_queue(
                name, lock_duration=LOCK_DURATION, max_delivery_count=ENTITY_MAX_DELIVERIES
            )
        return name

    async def delete_location(self, harness: Harness, location: str) -> None:
        self.broker.delete_entity(location)

    async def make_group(self, harness: Harness, location: str, hint: str) -> str:
        self.broker.create_subscription(location, hint, lock_duration=LOCK_DURATION)
        return hint
