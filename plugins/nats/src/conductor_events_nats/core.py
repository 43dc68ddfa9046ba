"""The ``nats`` queue type: core NATS subjects. This module imports nats-py; only ``connect``
imports it.

Core NATS is at most once: the server forwards a message to the subscriptions open at that
moment and keeps nothing. So here

* a publish is confirmed once the server has read it (a flush), which says nothing about
  whether anyone received it;
* ack does nothing at the server (there is nothing to tell it);
* a nack redelivers the message from this subscription's memory after the delay;
* a message a queue-group member still holds when it closes (prefetched, nacked, or in flight
  past the drain timeout) is published again to the subject, marked for that group, so another
  member takes it over (Conductor re-publishes too, ``rePublishIfNoAck``, but to every
  subscriber); a subscription without a group drops what it holds, with a warning: every
  other subscription had its own copy;
* a process that stops without closing loses what it held.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import structlog
from nats.aio.msg import Msg
from nats.errors import Error as NatsError

from conductor_events.backend import (
    Delivery,
    DeliveryHandle,
    QueueClient,
    SubscribeOptions,
    Subscription,
)
from conductor_events.errors import QueueError
from conductor_events.messages import Message, PublishFailure, PublishResult, new_message_id
from conductor_events_nats import wire
from conductor_events_nats.connection import Connection, describe
from conductor_events_nats.locations import Location, parse
from conductor_events_nats.settings import NatsSettings

log = structlog.get_logger(__name__)

_sequence = itertools.count()


class NatsQueueClient(QueueClient):
    """All ``nats:`` subjects of one server (or cluster), over one connection."""

    def __init__(self, settings: NatsSettings) -> None:
        self.settings = settings
        self.max_message_size = settings.max_message_size
        self.connection = Connection(settings, "nats")

    @property
    def publish_timeout(self) -> float:
        return self.settings.publish_timeout.total_seconds()

    def parse_location(self, location: str) -> str:
        """``<subject>`` or ``<subject>:<queue group>``."""
        return str(parse(location, "nats", "queue group"))

    async def publish(self, location: str, messages: Sequence[Message]) -> PublishResult:
        subject = parse(location, "nats", "queue group").subject
        client = await self.connection.client()
        limit = self.settings.max_message_size
        result = PublishResult()
        sent: list[str] = []
        for message in messages:
            try:
                body = message.body()
            except (TypeError, ValueError) as exc:
                result.failed.append(PublishFailure(message.id, f"payload is not JSON: {exc}"))
                continue
            problem = wire.header_problem(message.headers)
            if problem is None and len(body) > limit:
                problem = (
                    f"message of {len(body)} bytes exceeds the limit of {limit} bytes "
                    f"({NatsSettings.section}.max-message-size)"
                )
            if problem is not None:
                result.failed.append(PublishFailure(message.id, problem))
                continue
            try:
                await client.publish(subject, body, headers=wire.encode_headers(message))
            except (NatsError, OSError) as exc:
                result.failed.append(PublishFailure(message.id, describe(exc)))
                continue
            sent.append(message.id)
        if sent:
            try:
                await self.connection.confirm(self.publish_timeout)
            except (NatsError, OSError, TimeoutError, QueueError) as exc:
                why = f"the server did not confirm receipt: {describe(exc)}"
                result.failed += [PublishFailure(message_id, why) for message_id in sent]
            else:
                result.published += sent
        if result.failed:
            log.warning(
                "nats.publish.failed",
                subject=subject,
                failed=len(result.failed),
                reason=result.failed[0].reason,
            )
        return result

    async def republish(self, subject: str, data: bytes, headers: dict[str, str]) -> None:
        """Send a message a subscription gives back (see :class:`NatsSubscription`)."""
        client = await self.connection.client()
        await client.publish(subject, data, headers=headers)

    async def subscribe(self, location: str, options: SubscribeOptions) -> Subscription:
        where = parse(location, "nats", "queue group")
        group = options.group or where.group
        client = await self.connection.client()
        subscription = NatsSubscription(self, Location(where.subject, group), options)
        try:
            await subscription.start(client)
        except (NatsError, OSError) as exc:
            raise QueueError(
                f"nats: cannot subscribe to {where.subject!r}: {describe(exc)}"
            ) from exc
        return subscription

    async def close(self) -> None:
        await self.connection.close()


class _Held:
    """A received message as the plugin keeps it: enough to deliver or publish it again."""

    __slots__ = ("attempt", "data", "headers")

    def __init__(self, data: bytes, headers: dict[str, str], attempt: int) -> None:
        self.data = data
        self.headers = headers
        self.attempt = attempt


class NatsSubscription(Subscription):
    """A core NATS subscription; messages wait in memory until ``receive`` takes them."""

    def __init__(
        self, client: NatsQueueClient, location: Location, options: SubscribeOptions
    ) -> None:
        super().__init__(options)
        self.client = client
        self.location = location
        self.poll_interval = 0.5
        self._limit = client.settings.pending_messages_limit
        self._incoming: deque[_Held] = deque()
        self._retries: list[tuple[float, int, _Held]] = []
        self._returned: list[_Held] = []
        self._arrived = asyncio.Event()
        self._subscription: Any = None
        self._dropped = 0

    async def start(self, client: Any) -> None:
        self._subscription = await client.subscribe(
            self.location.subject, queue=self.location.group or "", cb=self._on_message
        )
        # The server registers the interest when it reads the SUB: a publish that follows
        # must find this subscription.
        await self.client.connection.confirm(self.client.publish_timeout)

    async def _on_message(self, msg: Msg) -> None:
        if len(self._incoming) >= self._limit:
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                log.warning(
                    "nats.slow_consumer",
                    subject=self.location.subject,
                    dropped=self._dropped,
                    hint=f"raise {NatsSettings.section}.pending-messages-limit or consume faster",
                )
            return
        headers = dict(msg.headers) if msg.headers else {}
        returned_to = headers.get(wire.RETURNED_TO)
        if returned_to is not None and returned_to != self.location.group:
            return  # handed back to its queue group: this subscription had its copy already
        if not headers.get(wire.MESSAGE_ID):
            # A producer without ids: one id for the message's whole stay here.
            headers[wire.MESSAGE_ID] = new_message_id()
        attempt = _attempt_of(headers)
        self._incoming.append(_Held(msg.data, headers, attempt))
        self._arrived.set()

    def redeliver_later(self, held: _Held, delay: float) -> None:
        held.attempt += 1
        heapq.heappush(self._retries, (time.monotonic() + delay, next(_sequence), held))
        self._arrived.set()

    def give_back(self, held: _Held) -> None:
        """A delivery returned unhandled: kept for ``_close`` when closing, else delivered
        again from here at once."""
        held.attempt += 1
        if self.closed:
            self._returned.append(held)
        else:
            self._incoming.appendleft(held)
            self._arrived.set()

    async def _fetch(self, max_messages: int, timeout: float) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while True:
            taken = self._take_due(max_messages)
            if taken:
                return taken
            now = time.monotonic()
            if now >= deadline:
                return []
            wait = deadline - now
            if self._retries:
                wait = min(wait, self._retries[0][0] - now)
            # Messages arrive through _on_message on this loop: nothing came since _take_due.
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), max(0.0, wait))

    def _take_due(self, limit: int) -> list[Delivery]:
        taken: list[Delivery] = []
        now = time.monotonic()
        while self._retries and self._retries[0][0] <= now and len(taken) < limit:
            taken.append(self._deliver(heapq.heappop(self._retries)[2]))
        incoming = self._incoming
        while incoming and len(taken) < limit:
            taken.append(self._deliver(incoming.popleft()))
        return taken

    def _deliver(self, held: _Held) -> Delivery:
        user, own = wire.split_headers(held.headers)
        message = wire.decode_message(held.data, own, user, new_message_id())
        return Delivery(message, held.attempt, NatsHandle(self, held))

    async def _close(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            try:
                await subscription.unsubscribe()
            except (NatsError, OSError) as exc:
                log.warning(
                    "nats.unsubscribe.failed", subject=self.location.subject, error=str(exc)
                )
        left = self._returned + list(self._incoming) + [held for _, _, held in self._retries]
        self._returned, self._retries = [], []
        self._incoming.clear()
        if not left:
            return
        group = self.location.group
        if group is None:
            log.warning(
                "nats.close.dropped",
                subject=self.location.subject,
                count=len(left),
                hint="core NATS is at most once: every subscription without a queue group had "
                "its own copy, so none takes these over",
            )
            return
        failed = 0
        for held in left:
            headers = dict(held.headers)
            headers[wire.ATTEMPT] = str(held.attempt)
            headers[wire.RETURNED_TO] = group
            try:
                await self.client.republish(self.location.subject, held.data, headers)
            except (NatsError, OSError, QueueError):
                failed += 1
        try:
            await self.client.connection.confirm(self.client.publish_timeout)
        except (NatsError, OSError, QueueError, TimeoutError):
            failed = len(left)  # not confirmed: count them as lost
        (log.warning if failed else log.info)(
            "nats.close.returned",
            subject=self.location.subject,
            group=self.location.group,
            count=len(left) - failed,
            lost=failed,
        )


def _attempt_of(headers: dict[str, str]) -> int:
    """Deliveries so far: 1, or the count a subscription that gave the message back stored."""
    text = headers.get(wire.ATTEMPT)
    if text is None:
        return 1
    try:
        return max(1, int(text))
    except ValueError:
        return 1


class NatsHandle(DeliveryHandle):
    """A core NATS message held by this process: settling it tells the server nothing."""

    __slots__ = ("_held", "_owner")

    def __init__(self, owner: NatsSubscription, held: _Held) -> None:
        self._owner = owner
        self._held = held

    async def ack(self) -> None:
        """Nothing to tell the server: core NATS does not track deliveries."""

    async def nack(self, delay: float, reason: str | None) -> None:
        self._owner.redeliver_later(self._held, delay)

    async def extend(self, seconds: float) -> None:
        """Nothing expires: a message stays with this subscription until it is settled."""

    async def release(self) -> None:
        self._owner.give_back(self._held)
