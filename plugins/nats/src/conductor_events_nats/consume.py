"""Consuming JetStream: one pull subscription on a durable consumer per subscription.

Subscriptions with the same consumer name share its messages (competing consumers); the
server delivers an unacked message again after ``ack-wait``. Settling maps to JetStream's
acks: ack, nak with a delay, ``in_progress`` (extend) and term.

Dead-lettering never loses a message: it is published to the dead-letter subject first, the
stream's acknowledgement awaited, and only then is the original terminated. When that publish
fails the original is not acked: a nack at the attempt limit naks it again (it comes back and
dead-lettering is tried again), and an explicit ``dead_letter`` raises with the message still
pending. The server is told to redeliver without limit; the plugin applies ``max-deliver``
itself, so a message whose handler never settled it (a crash, an expired ack-wait) is
dead-lettered when it arrives past the limit instead of staying in the stream undelivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

import structlog
from nats.aio.msg import Msg
from nats.errors import Error as NatsError

from conductor_events.backend import Delivery, DeliveryHandle, SubscribeOptions, Subscription
from conductor_events.errors import QueueError
from conductor_events_nats import wire
from conductor_events_nats.connection import describe

if TYPE_CHECKING:
    from conductor_events_nats.jetstream import JetStreamQueueClient

log = structlog.get_logger(__name__)

DLQ_RETRY_DELAY = 1.0
"""Seconds before a message whose dead-lettering failed is delivered again (and tried again)."""

MIN_FETCH = 0.01
"""Shortest pull request, in seconds (nats-py refuses a zero expiry)."""

_FAILURES = (NatsError, OSError, TimeoutError)


class JetStreamSubscription(Subscription):
    """A pull subscription of durable consumer ``durable`` on ``stream``, reading ``subject``."""

    def __init__(
        self,
        client: JetStreamQueueClient,
        subject: str,
        stream: str,
        durable: str,
        pull: Any,
        options: SubscribeOptions,
    ) -> None:
        super().__init__(options)
        self.client = client
        self.subject = subject
        self.stream = stream
        self.durable = durable
        settings = client.settings
        self.poll_interval = settings.poll_time_duration.total_seconds()
        self.max_deliver = settings.max_deliver
        self.ack_wait = settings.ack_wait.total_seconds()
        self._pull = pull

    async def _fetch(self, max_messages: int, timeout: float) -> list[Delivery]:
        try:
            messages = await self._pull.fetch(max_messages, timeout=max(timeout, MIN_FETCH))
        except TimeoutError:
            return []  # nothing arrived in time (nats-py's fetch timeouts are TimeoutErrors)
        except (NatsError, OSError) as exc:
            log.warning("jsm.fetch.failed", subject=self.subject, error=describe(exc))
            await asyncio.sleep(min(timeout, self.poll_interval))
            return []
        deliveries: list[Delivery] = []
        returned = self.client.returned
        for msg in messages:
            meta = msg.metadata
            delivered = meta.num_delivered
            if returned:
                delivered -= returned.get((meta.stream, meta.consumer, meta.sequence.stream), 0)
            if delivered > self.max_deliver:
                await self._expired(msg, delivered)
                continue
            deliveries.append(self._deliver(msg, delivered))
        return deliveries

    def _deliver(self, msg: Msg, delivered: int) -> Delivery:
        user, own = wire.split_headers(msg.headers)
        meta = msg.metadata
        message = wire.decode_message(
            msg.data,
            own,
            user,
            f"{meta.stream}-{meta.sequence.stream}",
            meta.timestamp.timestamp() if wire.CREATED_AT not in own else None,
        )
        return Delivery(
            message,
            delivered,
            JetStreamHandle(self, msg, delivered),
            dead_letter_reason=own.get(wire.DLQ_REASON),
        )

    async def _expired(self, msg: Msg, delivered: int) -> None:
        """A message delivered past ``max-deliver`` without being settled: dead-letter it."""
        reason = (
            f"delivered {delivered} times without being acked "
            f"({type(self.client.settings).section}.max-deliver is {self.max_deliver})"
        )
        try:
            await self.send_to_dead_letter(msg, reason, delivered)
            await msg.term()
        except (QueueError, *_FAILURES):
            with contextlib.suppress(*_FAILURES):
                await msg.nak(delay=DLQ_RETRY_DELAY)

    async def send_to_dead_letter(self, msg: Msg, reason: str, attempts: int) -> None:
        """Publish ``msg`` to the dead-letter subject and wait for the stream's ack; raises
        :class:`QueueError` when it was not stored."""
        subject = self.client.settings.dead_letter_subject_for(self.subject)
        meta = msg.metadata
        headers = {
            name: value
            for name, value in (msg.headers or {}).items()
            if not wire.is_reserved(name) or name in _KEPT
        }
        headers.setdefault(wire.MESSAGE_ID, f"{meta.stream}-{meta.sequence.stream}")
        headers.setdefault(wire.CREATED_AT, repr(meta.timestamp.timestamp()))
        headers[wire.DLQ_REASON] = wire.one_line(reason) or "dead-lettered"
        headers[wire.DLQ_SUBJECT] = msg.subject
        headers[wire.DLQ_STREAM] = meta.stream
        headers[wire.DLQ_SEQUENCE] = str(meta.sequence.stream)
        headers[wire.DLQ_ATTEMPTS] = str(attempts)
        try:
            await self.client.publish_raw(subject, msg.data, headers)
        except QueueError as exc:
            log.error(
                "jsm.dlq.publish.failed",
                subject=self.subject,
                dead_letter_subject=subject,
                message_id=headers[wire.MESSAGE_ID],
                error=str(exc),
            )
            raise QueueError(
                f"jsm: dead-lettering {headers[wire.MESSAGE_ID]} to {subject!r} failed: {exc}; "
                "the message is not acked"
            ) from exc
        log.info(
            "jsm.dlq.published",
            subject=self.subject,
            dead_letter_subject=subject,
            message_id=headers[wire.MESSAGE_ID],
            reason=headers[wire.DLQ_REASON],
        )

    async def _close(self) -> None:
        try:
            await self._pull.unsubscribe()
        except (NatsError, OSError, ValueError) as exc:
            log.debug("jsm.unsubscribe.failed", subject=self.subject, error=describe(exc))


_KEPT = frozenset({wire.MESSAGE_ID, wire.KEY, wire.CREATED_AT})
"""Reserved headers a dead-lettered message keeps: its id, key and creation time."""


class JetStreamHandle(DeliveryHandle):
    """How a JetStream message is settled. ``delivery.handle.stream_sequence`` is its place in
    the stream, ``delivery.handle.msg`` nats-py's message."""

    __slots__ = ("_attempts", "_keeper", "_owner", "msg")

    def __init__(self, owner: JetStreamSubscription, msg: Msg, delivered: int) -> None:
        self._owner = owner
        self.msg = msg
        self._attempts = delivered
        self._keeper: asyncio.Task[None] | None = None

    @property
    def stream_sequence(self) -> int:
        return int(self.msg.metadata.sequence.stream)

    def _done(self) -> None:
        """Settled for good: forget it was ever handed back."""
        self._stop_keeper()
        returned = self._owner.client.returned
        if returned:
            meta = self.msg.metadata
            returned.pop((meta.stream, meta.consumer, meta.sequence.stream), None)

    async def ack(self) -> None:
        self._done()
        await self.msg.ack()

    async def nack(self, delay: float, reason: str | None) -> None:
        self._stop_keeper()
        owner = self._owner
        if self._attempts >= owner.max_deliver:
            why = reason or f"nacked on delivery {self._attempts} of {owner.max_deliver}"
            try:
                await owner.send_to_dead_letter(self.msg, why, self._attempts)
            except QueueError:
                # Not acked, not lost: delivered again, and dead-lettering is tried again.
                await self.msg.nak(delay=max(delay, DLQ_RETRY_DELAY))
                return
            self._done()
            await self.msg.term()
            return
        await self.msg.nak(delay=delay)

    async def dead_letter(self, reason: str) -> None:
        self._stop_keeper()
        await self._owner.send_to_dead_letter(self.msg, reason, self._attempts)
        self._done()
        await self.msg.term()

    async def extend(self, seconds: float) -> None:
        """``in_progress`` restarts the ack-wait; for longer than one ack-wait, keep telling
        the server (every third of an ack-wait, so a busy loop is not late) until ``seconds``
        have passed or the message is settled."""
        self._stop_keeper()
        await self.msg.in_progress()
        if seconds > self._owner.ack_wait:
            self._keeper = asyncio.get_running_loop().create_task(
                self._keep_in_progress(time.monotonic() + seconds)
            )

    async def _keep_in_progress(self, until: float) -> None:
        ack_wait = self._owner.ack_wait
        while time.monotonic() + ack_wait < until:
            await asyncio.sleep(ack_wait / 3)
            try:
                await self.msg.in_progress()
            except _FAILURES as exc:
                log.warning("jsm.extend.failed", subject=self._owner.subject, error=describe(exc))
                return

    def _stop_keeper(self) -> None:
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.cancel()

    async def release(self) -> None:
        """NAK now, so another subscription gets it at once. The server counts the
        redelivery; this process remembers it was handed back unhandled, so the attempt
        count (and ``max-deliver``) does not include it."""
        self._stop_keeper()
        meta = self.msg.metadata
        self._owner.client.hand_back((meta.stream, meta.consumer, meta.sequence.stream))
        await self.msg.nak()
