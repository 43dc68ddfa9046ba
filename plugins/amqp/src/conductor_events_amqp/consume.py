"""Consuming: one channel and one consumer (manual acks) per subscription.

The broker pushes up to the channel's prefetch of unacked messages; they wait in the
subscription's buffer until ``receive`` hands them out.

Settling, and what each step risks (nothing is acked before what replaces it is confirmed):

* ``ack``: ``basic.ack``.
* ``nack(delay)`` below the attempt limit: the message is published again, with the attempt
  count in the ``x-conductor-attempt`` header, straight to its queue (no delay) or to a delay
  queue ``<queue>.delay.<ms>`` whose ``x-message-ttl`` dead-letters it back to the queue after
  the delay; the original is acked only once the broker confirmed the copy. A failed publish
  leaves the original unacked (and raises).
* ``nack`` at the attempt limit, and ``dead_letter(reason)``: the message is published to
  ``<queue>.dlq`` with the reason, the source queue and the attempt count in headers, then the
  original is acked once the broker confirmed it; a failed publish leaves it unacked.
* ``release`` (close, shutdown): ``basic.reject`` with requeue, so it returns to its place.

A delivery whose channel was lost (a broker restart) cannot be settled any more: the broker
has already put it back, and delivers it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

import aio_pika
import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustChannel, AbstractRobustQueue
from aio_pika.exceptions import AMQPError, ChannelInvalidStateError

from conductor_events.backend import Delivery, DeliveryHandle, SubscribeOptions, Subscription
from conductor_events.errors import QueueError
from conductor_events.messages import Message, decode_payload
from conductor_events_amqp import wire
from conductor_events_amqp.locations import Location

if TYPE_CHECKING:
    from conductor_events_amqp.client import AmqpQueueClient

log = structlog.get_logger(__name__)

_DROPPED_ON_REPUBLISH = frozenset({wire.DELIVERY_COUNT, "x-death", "x-first-death-exchange"})
"""Broker-maintained headers that describe the original, not the copy."""


def _stale(incoming: AbstractIncomingMessage) -> bool:
    """Whether the channel the message came on is gone (the broker put the message back)."""
    try:
        incoming.channel  # noqa: B018 - raises when the channel is closed
    except ChannelInvalidStateError:
        return True
    return False


class AmqpSubscription(Subscription):
    """A consumer on one queue: the location's queue, or the queue bound to its exchange."""

    def __init__(
        self,
        client: AmqpQueueClient,
        location: Location,
        channel: AbstractRobustChannel,
        queue: AbstractRobustQueue,
        options: SubscribeOptions,
    ) -> None:
        super().__init__(options)
        self.client = client
        self.location = location
        self.queue_name = location.queue
        self.dead_letter_queue = client.dead_letter_queue(location.queue)
        self.max_deliveries = client.settings.max_deliveries
        self.poll_interval = client.settings.poll_time_duration.total_seconds()
        self._channel = channel
        self._queue = queue
        self._arrived: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._consumer_tag: str | None = None

    async def start(self) -> None:
        self._consumer_tag = await self._queue.consume(self._on_message, no_ack=False)

    async def _on_message(self, incoming: AbstractIncomingMessage) -> None:
        self._arrived.put_nowait(incoming)

    async def _fetch(self, max_messages: int, timeout: float) -> list[Delivery]:
        arrived = self._arrived
        batch: list[AbstractIncomingMessage] = []
        if arrived.empty():
            try:
                batch.append(await asyncio.wait_for(arrived.get(), timeout))
            except TimeoutError:
                return []
        while len(batch) < max_messages and not arrived.empty():
            batch.append(arrived.get_nowait())
        deliveries: list[Delivery] = []
        for incoming in batch:
            if _stale(incoming):
                continue  # its channel is gone: the broker delivers it again
            deliveries.append(self._delivery(incoming))
        return deliveries

    def _delivery(self, incoming: AbstractIncomingMessage) -> Delivery:
        """The core's delivery of ``incoming``, settled through an :class:`AmqpHandle`."""
        user_headers, own = wire.split_headers(incoming.headers)
        attempt = wire.attempt_of(own)
        message_id = incoming.message_id or f"{self.queue_name}-{incoming.delivery_tag}"
        key = own.get(wire.KEY)
        reason = own.get(wire.DLQ_REASON)
        stamp = incoming.timestamp
        message = Message(
            decode_payload(incoming.body),
            message_id,
            user_headers,
            None if key is None else wire.text(key),
            stamp.timestamp() if stamp is not None else time.time(),
        )
        return Delivery(
            message,
            attempt,
            AmqpHandle(self, incoming, message_id, attempt),
            dead_letter_reason=None if reason is None else wire.text(reason),
        )

    async def _close(self) -> None:
        """Stop the consumer and close the channel, which returns every message still unacked
        on it (received and not handed out) to the queue."""
        tag, self._consumer_tag = self._consumer_tag, None
        try:
            if tag is not None:
                with contextlib.suppress(ChannelInvalidStateError):
                    await self._queue.cancel(tag)
        except (AMQPError, OSError, TimeoutError) as exc:
            log.warning("amqp.consumer.cancel_failed", queue=self.queue_name, error=str(exc))
        finally:
            try:
                await self._channel.close()
            except Exception as exc:
                log.warning("amqp.channel.close_failed", queue=self.queue_name, error=str(exc))

    # -- republishing ------------------------------------------------------------------------

    def copy(self, incoming: AbstractIncomingMessage, message_id: str, **extra: Any) -> Any:
        """``incoming`` as a new message, with its body, id, properties and headers (the
        plugin's own updated with ``extra``, the broker's dropped)."""
        headers = {
            name: value
            for name, value in (incoming.headers or {}).items()
            if name not in _DROPPED_ON_REPUBLISH
        }
        headers.update(extra)
        return aio_pika.Message(
            incoming.body,
            headers=headers,
            content_type=incoming.content_type,
            content_encoding=incoming.content_encoding,
            delivery_mode=incoming.delivery_mode or aio_pika.DeliveryMode.PERSISTENT,
            priority=incoming.priority,
            correlation_id=incoming.correlation_id,
            reply_to=incoming.reply_to,
            message_id=message_id,
            timestamp=incoming.timestamp,
            type=incoming.type,
            app_id=incoming.app_id,
        )

    async def redeliver(self, handle: AmqpHandle, delay: float) -> None:
        """Publish the message again as its next attempt, after ``delay`` seconds, then ack it."""
        copy = self.copy(handle.incoming, handle.message_id, **{wire.ATTEMPT: handle.next_attempt})
        try:
            target = self.queue_name
            if delay > 0:
                target = await self.client.delay_queue(self.queue_name, delay)
            await self.client.send_to_queue(target, copy)
        except (AMQPError, OSError, TimeoutError, QueueError) as exc:
            raise QueueError(
                f"{self.client.type_name}: redelivering message {handle.message_id} to "
                f"queue {self.queue_name!r} failed: {exc}; it is not acked, so the broker "
                "delivers it again"
            ) from exc
        await handle.settle_original("nack")

    async def send_to_dead_letters(self, handle: AmqpHandle, reason: str) -> None:
        """Publish the message to the dead-letter queue with the reason, then ack it."""
        copy = self.copy(
            handle.incoming,
            handle.message_id,
            **{
                wire.DLQ_REASON: reason,
                wire.DLQ_QUEUE: self.queue_name,
                wire.DLQ_ATTEMPTS: handle.attempt_number,
            },
        )
        try:
            await self.client.send_to_queue(self.dead_letter_queue, copy)
        except (AMQPError, OSError, TimeoutError, QueueError) as exc:
            log.error(
                "amqp.dlq.publish.failed",
                queue=self.queue_name,
                dead_letter_queue=self.dead_letter_queue,
                message_id=handle.message_id,
                error=str(exc),
            )
            raise QueueError(
                f"{self.client.type_name}: dead-lettering message {handle.message_id} to "
                f"queue {self.dead_letter_queue!r} failed: {exc}; the message is not acked"
            ) from exc
        log.info(
            "amqp.dlq.published",
            queue=self.queue_name,
            dead_letter_queue=self.dead_letter_queue,
            message_id=handle.message_id,
            reason=reason,
        )
        await handle.settle_original("dead-letter")


class AmqpHandle(DeliveryHandle):
    """How one message from a RabbitMQ queue is settled. ``incoming`` is aio-pika's message
    (its raw body, properties, ``redelivered`` flag and delivery tag), for example to read a
    body that is not UTF-8: ``delivery.handle.incoming.body``."""

    __slots__ = ("attempt_number", "incoming", "message_id", "owner")

    def __init__(
        self,
        owner: AmqpSubscription,
        incoming: AbstractIncomingMessage,
        message_id: str,
        attempt: int,
    ) -> None:
        self.owner = owner
        self.incoming = incoming
        self.message_id = message_id
        self.attempt_number = attempt

    @property
    def next_attempt(self) -> int:
        return self.attempt_number + 1

    async def settle_original(self, why: str) -> None:
        """Ack the original (once its copy, if any, is confirmed). An ack that cannot reach
        the broker (the channel was lost, or closed on an error) is logged, not raised: the
        broker has the message back and delivers it again (a duplicate, never a loss)."""
        try:
            await self.incoming.ack()
        except (ChannelInvalidStateError, AMQPError, ConnectionError) as exc:
            log.warning(
                "amqp.delivery.stale",
                queue=self.owner.queue_name,
                message_id=self.message_id,
                after=why,
                error=str(exc),
                hint="the channel was lost; the broker delivers the original again",
            )

    async def ack(self) -> None:
        await self.settle_original("ack")

    async def nack(self, delay: float, reason: str | None) -> None:
        if self.attempt_number >= self.owner.max_deliveries:
            await self.owner.send_to_dead_letters(
                self, reason or f"nacked on each of {self.attempt_number} deliveries"
            )
            return
        await self.owner.redeliver(self, delay)

    async def dead_letter(self, reason: str) -> None:
        await self.owner.send_to_dead_letters(self, reason)

    async def extend(self, seconds: float) -> None:
        """RabbitMQ has no visibility timeout: a message stays with its consumer until it is
        settled or the channel closes (or the broker's ``consumer_timeout`` passes)."""

    async def release(self) -> None:
        with contextlib.suppress(ChannelInvalidStateError):  # gone: the broker has it back
            await self.incoming.reject(requeue=True)
