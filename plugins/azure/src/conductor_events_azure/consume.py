"""Consuming: PEEK_LOCK receivers, settlement, lock renewal, dead-lettering.

* ack = complete; nack = abandon (the delivery count goes up and the message is available at
  once). A nack with a delay keeps the lock for the delay, then abandons; when the delay is
  longer than the lock has left, the lock is simply left to expire, which redelivers the
  message the same way (Service Bus has no per-message redelivery delay, and the alternatives,
  defer or a scheduled copy, lose the delivery count or duplicate the message);
* past ``receive.max-deliveries`` a nack dead-letters with reason ``MaxAttemptsExceeded`` and
  the nack's reason as description;
* extend = renew the lock now, and keep renewing it for the requested time; a message held
  until its lock runs low is renewed automatically, up to ``receive.max-lock-renewal-duration``
  after it was received. One task per subscription does the renewals (the SDK's
  AutoLockRenewer starts a task per message polling once a second, which cannot keep locks
  shorter than about 3 s and costs a task for every message, most of which are settled long
  before their lock runs low);
* a lock lost before a settlement (expired, or the connection dropped) is logged: the
  message is delivered again, never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from typing import TYPE_CHECKING, Any

import structlog
from azure.servicebus import ServiceBusReceivedMessage, ServiceBusReceiveMode, ServiceBusSubQueue
from azure.servicebus.aio import ServiceBusReceiver
from azure.servicebus.exceptions import (
    MessageAlreadySettled,
    MessageLockLostError,
    ServiceBusAuthenticationError,
    ServiceBusError,
)

from conductor_events.backend import Delivery, DeliveryHandle, SubscribeOptions, Subscription
from conductor_events.errors import QueueError
from conductor_events.messages import Message, decode_payload
from conductor_events_azure.client import describe_error, open_handler

if TYPE_CHECKING:
    from conductor_events_azure.client import AzureQueueClient
    from conductor_events_azure.locations import Location

log = structlog.get_logger(__name__)

MAX_ATTEMPTS_REASON = "MaxAttemptsExceeded"
_HIDDEN_PROPERTIES = {"DeadLetterReason", "DeadLetterErrorDescription"}
_REASON_LIMIT = 4096


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def to_message(received: ServiceBusReceivedMessage) -> Message:
    """The conductor-events message of a received Service Bus message."""
    raw = received.raw_amqp_message
    body_type = str(raw.body_type).lower()
    if "data" in body_type:
        body: bytes | str = b"".join(bytes(part) for part in raw.body)
    else:
        body = _text(raw.body)
    headers = {
        _text(key): _text(value)
        for key, value in (received.application_properties or {}).items()
        if _text(key) not in _HIDDEN_PROPERTIES
    }
    enqueued = received.enqueued_time_utc
    return Message(
        payload=decode_payload(body),
        id=str(received.message_id) if received.message_id is not None else "",
        headers=headers,
        key=received.session_id or received.partition_key,
        created_at=enqueued.timestamp() if enqueued is not None else 0.0,
    )


def _reason(received: ServiceBusReceivedMessage) -> str | None:
    """``DeadLetterReason: DeadLetterErrorDescription`` of a dead-lettered message (the
    description alone holds the handler's error for ``MaxAttemptsExceeded``)."""
    reason = received.dead_letter_reason
    description = received.dead_letter_error_description
    if reason and description and description != reason:
        return f"{reason}: {description}"
    return reason or description


class AzureSubscription(Subscription):
    """One PEEK_LOCK receiver on a queue, a subscription, or a dead-letter sub-queue."""

    def __init__(
        self, client: AzureQueueClient, location: Location, options: SubscribeOptions
    ) -> None:
        receive = client.settings.receive
        limit = min(options.max_in_flight, receive.max_concurrent_messages)
        if limit != options.max_in_flight:
            options = SubscribeOptions(
                group=options.group,
                max_in_flight=limit,
                prefetch=options.prefetch,
                drain_timeout=options.drain_timeout,
            )
        super().__init__(options)
        self.client = client
        self.location = location
        self.poll_interval = max(receive.max_wait_time.total_seconds(), 0.05)
        self._receiver: ServiceBusReceiver | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._delayed: set[asyncio.Task[None]] = set()
        self._reopen = False
        self._delayed_handles: set[AzureHandle] = set()
        self.held: set[AzureHandle] = set()
        """Handles of messages received and not settled: the locks the watchdog renews."""

    @property
    def receiver(self) -> ServiceBusReceiver:
        if self._receiver is None:
            raise QueueError(f"the subscription to azure:{self.location.canonical} is closed")
        return self._receiver

    async def open(self) -> None:
        """Create the receiver and open its link now, so a bad entity or key fails here."""
        settings = self.client.settings.receive
        service_bus = self.client.service_bus_client(self.location.connection)
        common: dict[str, Any] = {
            "receive_mode": ServiceBusReceiveMode.PEEK_LOCK,
            "prefetch_count": settings.prefetch_count,
            "keep_alive": None,
        }
        if self.location.dead_letter:
            common["sub_queue"] = ServiceBusSubQueue.DEAD_LETTER
        if self.location.subscription is not None:
            receiver = service_bus.get_subscription_receiver(
                self.location.entity, self.location.subscription, **common
            )
        else:
            receiver = service_bus.get_queue_receiver(self.location.entity, **common)
        what = f"subscribe to azure:{self.location.canonical}"
        try:
            await open_handler(receiver, self.client.settings)
        except ServiceBusError as exc:
            with contextlib.suppress(Exception):
                await receiver.close()
            raise QueueError(describe_error(exc, what)) from exc
        self._receiver = receiver
        self._watchdog = asyncio.create_task(self._watch_locks())

    async def _fetch(self, max_messages: int, timeout: float) -> list[Delivery]:
        receiver = self.receiver
        try:
            if self._reopen:
                # Reopening takes a handshake, longer than a short receive may wait: do it
                # first, so the receive itself only waits for messages.
                await open_handler(receiver, self.client.settings)
                self._reopen = False
            received = await receiver.receive_messages(
                max_message_count=max_messages, max_wait_time=max(timeout, 0.05)
            )
        except ServiceBusAuthenticationError as exc:
            raise QueueError(
                describe_error(exc, f"receive from azure:{self.location.canonical}")
            ) from exc
        except ServiceBusError as exc:
            # A dropped connection: the SDK reopens its link on the next receive.
            log.warning(
                "azure.receive.failed",
                location=self.location.canonical,
                error=describe_error(exc, "receive"),
            )
            self._reopen = True
            await asyncio.sleep(min(timeout, 0.5))
            return []
        return [self._delivery(message) for message in received]

    def _delivery(self, received: ServiceBusReceivedMessage) -> Delivery:
        message = to_message(received)
        attempt = (received.delivery_count or 0) + 1
        handle = AzureHandle(self, received, message.id, attempt)
        self.held.add(handle)
        return Delivery(message, attempt, handle, dead_letter_reason=_reason(received))

    # -- lock renewal ------------------------------------------------------------------------

    async def _watch_locks(self) -> None:
        """Renew the locks of held deliveries when they run low, while they may be renewed."""
        receive = self.client.settings.receive
        automatic = receive.max_lock_renewal_duration
        margin = receive.lock_renewal_margin.total_seconds()
        while not self.closed:
            held = [handle for handle in self.held if not handle.settled]
            shortest = min((d.lock_span for d in held), default=4.0)
            await asyncio.sleep(min(1.0, max(0.05, shortest / 8)))
            now = datetime.datetime.now(datetime.UTC)
            due = []
            for delivery in held:
                if delivery.settled or delivery.renewing:
                    continue
                until = delivery.received.locked_until_utc
                if until is None:
                    continue
                left = (until - now).total_seconds()
                if left > min(margin, delivery.lock_span / 2):
                    continue
                if delivery.renew_until is None and automatic.total_seconds() > 0:
                    delivery.renew_until = delivery.received_at + automatic
                if delivery.renew_until is not None and now < delivery.renew_until:
                    due.append(delivery)
            if due:
                await asyncio.gather(*(d.renew_in_background() for d in due))

    # -- delayed nacks -----------------------------------------------------------------------

    def _abandon_later(self, handle: AzureHandle, delay: float) -> None:
        task = asyncio.create_task(self._abandon_after(handle, delay))
        self._delayed.add(task)
        self._delayed_handles.add(handle)
        task.add_done_callback(self._delayed.discard)

    async def _abandon_after(self, handle: AzureHandle, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
        finally:
            self._delayed_handles.discard(handle)
        await handle.abandon_quietly()

    async def _close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        # Delayed nacks are due now: abandon them before the receiver goes.
        for task in list(self._delayed):
            task.cancel()
        for handle in list(self._delayed_handles):
            await handle.abandon_quietly()
        self._delayed_handles.clear()
        self.held.clear()
        receiver, self._receiver = self._receiver, None
        if receiver is not None:
            try:
                await receiver.close()
            except Exception as exc:  # the locks expire on their own
                log.warning("azure.receiver.close.failed", error=str(exc))


class AzureHandle(DeliveryHandle):
    """A message received in PEEK_LOCK mode, as ``delivery.handle``: the SDK's
    ``ServiceBusReceivedMessage`` is ``received`` (sequence number, lock token, properties)."""

    __slots__ = (
        "_owner",
        "attempt",
        "lock_span",
        "message_id",
        "received",
        "received_at",
        "renew_until",
        "renewing",
        "settled",
    )

    def __init__(
        self,
        owner: AzureSubscription,
        received: ServiceBusReceivedMessage,
        message_id: str,
        attempt: int,
    ) -> None:
        self._owner = owner
        self.received = received
        self.message_id = message_id
        self.attempt = attempt
        self.settled = False
        """Settled at the broker (or left to its lock): no renewals any more."""
        self.received_at = datetime.datetime.now(datetime.UTC)
        until = received.locked_until_utc
        span = (until - self.received_at).total_seconds() if until is not None else 30.0
        self.lock_span = max(span, 0.5)
        """The entity's lock duration, as seen on this delivery."""
        self.renew_until: datetime.datetime | None = None
        """Renew the lock until then; ``None``: not (yet) being renewed."""
        self.renewing = False

    async def renew_in_background(self) -> None:
        """One renewal by the subscription's watchdog; a failure means the lock is lost."""
        if self.settled or self._owner._receiver is None:
            return
        self.renewing = True
        try:
            await self._owner.receiver.renew_message_lock(self.received)
        except Exception as exc:
            if not self.settled:
                self.renew_until = None
                log.warning(
                    "azure.lock.lost",
                    location=self._owner.location.canonical,
                    message_id=self.message_id,
                    error=describe_error(exc, "renew-lock"),
                    hint="the lock could not be renewed; the message is delivered again",
                )
        finally:
            self.renewing = False

    def _lost(self, action: str, exc: BaseException) -> None:
        log.warning(
            "azure.delivery.lock_lost",
            action=action,
            location=self._owner.location.canonical,
            message_id=self.message_id,
            error=describe_error(exc, action),
            hint="the lock expired or was lost first; the message is delivered again",
        )

    async def _settle_on_broker(self, action: str, **kwargs: Any) -> None:
        receiver = self._owner.receiver
        method = {
            "complete": receiver.complete_message,
            "abandon": receiver.abandon_message,
        }.get(action)
        try:
            if method is not None:
                await method(self.received)
            else:
                await receiver.dead_letter_message(self.received, **kwargs)
        except (MessageLockLostError, MessageAlreadySettled) as exc:
            self._lost(action, exc)
        except ServiceBusError as exc:
            if "lock" in str(exc).lower():
                self._lost(action, exc)
                return
            raise QueueError(
                describe_error(exc, f"{action} on azure:{self._owner.location.canonical}")
            ) from exc

    def _done(self) -> None:
        self.settled = True
        self._owner.held.discard(self)

    async def ack(self) -> None:
        await self._settle_on_broker("complete")
        self._done()

    async def nack(self, delay: float, reason: str | None) -> None:
        await self._nack(delay, reason)
        self._done()

    async def _nack(self, delay: float, reason: str | None) -> None:
        limit = self._owner.client.settings.receive.max_deliveries
        if self.attempt >= limit and not self._owner.location.dead_letter:
            description = reason or f"nacked on delivery {self.attempt} of at most {limit}"
            await self._settle_on_broker(
                "dead-letter",
                reason=MAX_ATTEMPTS_REASON,
                error_description=description[:_REASON_LIMIT],
            )
            return
        if delay <= 0:
            await self._settle_on_broker("abandon")
            return
        until = self.received.locked_until_utc
        left = (until - datetime.datetime.now(datetime.UTC)).total_seconds() if until else 0.0
        if delay < left:
            self._owner._abandon_later(self, delay)
        # Otherwise the lock expires before the delay is over, which redelivers the message
        # just as an abandon would: nothing to send.

    async def abandon_quietly(self) -> None:
        """Abandon a delayed nack; a lock already gone is fine (it is redelivered anyway)."""
        if self._owner._receiver is None or self.received._settled:
            return
        try:
            await self._owner.receiver.abandon_message(self.received)
        except Exception as exc:
            log.debug("azure.delayed_abandon.skipped", message_id=self.message_id, error=str(exc))

    async def extend(self, seconds: float) -> None:
        try:
            await self._owner.receiver.renew_message_lock(self.received)
        except (MessageLockLostError, MessageAlreadySettled) as exc:
            self._lost("renew-lock", exc)
            return
        wanted = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)
        if self.renew_until is None or wanted > self.renew_until:
            self.renew_until = wanted

    async def dead_letter(self, reason: str) -> None:
        await self._settle_on_broker(
            "dead-letter", reason=reason[:_REASON_LIMIT], error_description=reason[:_REASON_LIMIT]
        )
        self._done()

    async def release(self) -> None:
        await self._release()
        self._done()

    async def _release(self) -> None:
        """Return the message unprocessed (shutdown): the AMQP Released outcome, as the SDK
        itself uses for its prefetched messages on close, so the delivery count does not go
        up; an abandon would count the delivery as a failed attempt. Falls back to abandon when
        the SDK's receive link is not at hand."""
        handler = getattr(self._owner.receiver, "_handler", None)
        settle = getattr(handler, "settle_messages_async", None)
        delivery_id = getattr(self.received, "_delivery_id", None)
        delivery_tag = getattr(self.received, "_delivery_tag", None)
        if settle is None or delivery_id is None or delivery_tag is None or self.received._settled:
            await self._settle_on_broker("abandon")
            return
        try:
            await settle(delivery_id, delivery_tag, "released")
            self.received._settled = True
        except Exception as exc:  # the lock expires and the message comes back anyway
            self._lost("release", exc)
