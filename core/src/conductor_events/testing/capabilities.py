"""What a queue backend promises: the flags that decide which conformance scenarios run.

A scenario that needs a promise the backend does not make is skipped, and the skip names the
flag, so a plugin's test report shows exactly what was not checked and why. Flags describe the
backend *as configured by the author's properties*: a visibility timeout of 2 s set in the
properties is declared here as ``visibility_timeout=2.0``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conductor_events.testing.harness import Harness


@dataclass(frozen=True, slots=True)
class DeadLetterSupport:
    """How the backend dead-letters, so the kit can read the dead-letter destination.

    Attributes:
        location: maps a location to its dead-letter location, as the backend's own location
            grammar writes it (for ``local``: ``lambda name: f"{name}.dlq"``). The kit
            subscribes to ``<type>:<that>`` to check what arrived.
        max_deliveries: deliveries after which a nack moves the message to the dead-letter
            destination instead of redelivering it (the attempt limit configured in the
            properties). ``None`` when only an explicit ``Delivery.dead_letter`` moves it; the
            attempt-limit scenario is then skipped.
        expired_deliveries: deliveries whose visibility timeout (lease, lock) ran out unsettled
            after which the backend dead-letters the message; ``None`` means
            ``max_deliveries``. Declare it where the broker enforces a limit of its own on
            that path (an SQS redrive policy's ``maxReceiveCount``, a Service Bus entity's
            ``MaxDeliveryCount``). The lease-expiry scenario is skipped when neither is set.
    """

    location: Callable[[str], str]
    max_deliveries: int | None = None
    expired_deliveries: int | None = None

    @property
    def expiry_limit(self) -> int | None:
        """Deliveries with an expired lease after which the message is dead-lettered."""
        if self.expired_deliveries is not None:
            return self.expired_deliveries
        return self.max_deliveries


RestartBroker = Callable[["Harness"], Awaitable[None]]
"""Restarts the broker under the running scenario; receives the harness (its ``properties``,
``queues`` and ``suite``, the test-class instance that the author's fixtures ran on)."""

PublishRaw = Callable[["Harness", str, Sequence[bytes]], Awaitable[None]]
"""Writes each of ``bodies`` to a location as one message, in order, with the broker's own
client; receives the harness, the location (as ``make_location`` returned it) and the
bodies."""


@dataclass(frozen=True, slots=True)
class RawPublisher:
    """How the kit writes a body straight to the broker, as a producer that does not use
    conductor-events would: no message id, headers or attributes of conductor-events, and the
    body's bytes as they are, not encoded by :func:`~conductor_events.messages.encode_payload`.

    Attributes:
        publish: ``async def publish(harness, location, bodies) -> None``, writing each body
            as one message, in order, with the broker's own client (the SDK, or SQLite for
            ``local``), and returning once the broker confirmed every write. It reaches the
            author's fixtures through ``harness.suite`` and ``harness.properties``.
        binary: the broker carries any bytes as a body. ``False`` where bodies are text (an
            SQS message body is a Unicode string): the kit then publishes no body that is not
            UTF-8.
    """

    publish: PublishRaw
    binary: bool = True


@dataclass(frozen=True, slots=True)
class Capabilities:
    """The promises of one queue backend; every flag defaults to the weakest promise.

    Attributes:
        persistent: a message published while no subscription is open waits for a later one,
            survives every subscription closing, and outlives the client that published it.
            Without it, the kit opens subscriptions before publishing and skips the scenarios
            that are about persistence.
        ordered: one subscription with ``max_in_flight=1`` receives messages of one key in
            publish order, and the next message only after the previous one is settled.
        consumer_groups: ``SubscribeOptions.group`` names independent groups; each group
            receives every message.
        replay: a new subscription without a group reads the location from its start again,
            messages acked by earlier subscriptions included (log-based backends).
        exactly_once: a message acked once is never delivered again; without it the kit
            tolerates duplicates and removes them by message id.
        max_payload_size: the largest encoded payload, in bytes, a publish must accept; one
            byte more must be refused per message. ``None`` takes the client's
            ``QueueClient.max_message_size``; when both are ``None`` the size scenarios skip.
        dead_letter: how the backend dead-letters; ``None`` skips the dead-letter scenarios.
        visibility_timeout: seconds a received message stays invisible before it is delivered
            again, as set in the properties. Keep it short (1-3 s) so the visibility-extension
            scenario, which holds a message for about 1.5 times this long, stays fast.
            ``None`` skips that scenario.
        restart_broker: an async callable that restarts the broker mid-stream; ``None`` skips
            the reconnect scenario.
        raw_publisher: how to write a body to the broker without conductor-events, as a
            foreign producer does; ``None`` skips the foreign-body scenario.
    """

    persistent: bool = False
    ordered: bool = False
    consumer_groups: bool = False
    replay: bool = False
    exactly_once: bool = False
    max_payload_size: int | None = None
    dead_letter: DeadLetterSupport | None = None
    visibility_timeout: float | None = None
    restart_broker: RestartBroker | None = None
    raw_publisher: RawPublisher | None = None
