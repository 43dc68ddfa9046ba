"""The backend contract: what a plugin implements to publish to and consume from its broker.

A plugin registers a :class:`QueueType` (see :mod:`conductor_events.hookspecs`). The core turns
each enabled type's settings into one :class:`QueueClient` on first use and caches it, so every
publish to ``sqs:...`` goes straight to the SQS client, never through the other plugins.

Consuming is pull-based: :meth:`QueueClient.subscribe` opens a :class:`Subscription`, whose
:meth:`~Subscription.receive` hands out :class:`Delivery` objects one at a time, and
:meth:`~Subscription.receive_batch` and :meth:`~Subscription.ack_many` many at a time, for
consumers whose per-message cost matters. The core carries the parts every backend would
otherwise write again (settlement state, in-flight limits, prefetch buffering, graceful
drain), so a backend implements only the broker calls: its :class:`Subscription` subclass
fetches (``_fetch``, optionally a batched ``_ack_many`` and ``_close``), and each message it
fetches becomes a ``Delivery(message, attempt, handle)`` whose :class:`DeliveryHandle` makes
the broker calls that settle it. ``Delivery`` is final and keeps its own state: a backend
never writes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, final

import structlog

from conductor_events.errors import DeliveryStateError, MalformedSinkError, QueueError

if TYPE_CHECKING:
    from conductor_events.config.settings import QueueSettings
    from conductor_events.messages import Message, PublishResult

log = structlog.get_logger(__name__)

S = TypeVar("S", bound="QueueSettings")

YIELD_INTERVAL = 0.005
"""Seconds a consumer may go on taking deliveries from buffers without the event loop running
anything else. Short against what waits on the loop (a Kafka commit interval of 100 ms, group
heartbeats every few seconds), and each of their steps waits for the next yield; long enough
that the yield itself costs nothing measurable (one loop iteration, a few microseconds)."""

_monotonic = time.monotonic


@dataclass(frozen=True, slots=True)
class QueueType(Generic[S]):
    """A queue type a plugin provides, as registered through ``register_queue_types``.

    Attributes:
        name: the sink prefix, e.g. ``"sqs"`` in ``sqs:orders``. Lower case, no colon.
        settings: the pydantic model of the type's properties section: the one its
            ``section`` names, or ``conductor.event-queues.<name>.*`` when it names none.
            Types that read one section, as Conductor's ``amqp_queue`` and ``amqp_exchange``
            both read ``conductor.event-queues.amqp``, register the same model: the section
            is validated once, and its ``enabled`` key switches all of them.
        connect: builds the type's client from its validated settings. Called once, on first
            use of the type; this is where the plugin imports its SDK, so that loading the
            plugin stays cheap. It must not do network I/O (that belongs in publish/subscribe).
        description: one line for ``conductor-events plugins``.
        locations: the location grammar in a few words, for error messages and docs.
    """

    name: str
    settings: type[S]
    connect: Callable[[S], QueueClient]
    description: str = ""
    locations: str = "a queue name"

    @property
    def section(self) -> str:
        """The property prefix this type's settings bind (``conductor.event-queues.<name>``
        unless the settings model names another section under ``conductor.event-queues``)."""
        from conductor_events.config.model import QUEUES_PREFIX

        return self.settings.section or f"{QUEUES_PREFIX}.{self.name}"


@dataclass(frozen=True, slots=True)
class SubscribeOptions:
    """How a subscription consumes.

    Attributes:
        group: consumer group or subscription name where the backend has such a thing (Kafka
            group id, Service Bus subscription); ``None`` takes the backend's default.
        max_in_flight: deliveries handed out and not yet settled; ``receive`` waits for a
            settlement beyond this. Backpressure, and the bound on what a crash redelivers.
        prefetch: how many messages one broker round trip may fetch ahead of ``receive``.
            Prefetched messages are returned to the queue on close.
        drain_timeout: seconds ``close`` waits for in-flight deliveries to be settled before
            returning them to the queue.
    """

    group: str | None = None
    max_in_flight: int = 100
    prefetch: int = 10
    drain_timeout: float = 30.0


class QueueClient(ABC):
    """One backend's connection for all its locations, created by :attr:`QueueType.connect`.

    Implementations hold the SDK client and whatever per-location state (resolved queue URLs,
    producers) they cache. Every method may be called concurrently from one event loop.
    """

    max_message_size: int | None = None
    """Largest encoded payload in bytes the backend accepts, or ``None`` when unbounded."""

    def parse_location(self, location: str) -> str:
        """Validate a sink's location for this backend and return its canonical form.

        Called once per sink string, before any I/O. Raise :class:`MalformedSinkError` with a
        message naming what is wrong. The default accepts any non-empty string.
        """
        if not location.strip():
            raise MalformedSinkError("the location after the colon is empty")
        return location

    @abstractmethod
    async def publish(self, location: str, messages: Sequence[Message]) -> PublishResult:
        """Publish messages to a location and return once the broker confirmed each of them.

        Report each message the broker refused in ``PublishResult.failed`` with the reason;
        raise only when nothing could be attempted (connection refused, unknown queue).
        Messages keep their ``id``; ``key`` maps to the backend's ordering/grouping key.
        """

    @abstractmethod
    async def subscribe(self, location: str, options: SubscribeOptions) -> Subscription:
        """Open a subscription to a location. Connection errors are raised here."""

    async def close(self) -> None:  # noqa: B027 - optional hook, empty by design
        """Release the client's connections. Open subscriptions are closed by their owners."""


class DeliveryState(enum.Enum):
    """Where a delivery is in its life."""

    PENDING = "pending"
    ACKED = "acked"
    NACKED = "nacked"
    DEAD_LETTERED = "dead-lettered"
    RELEASED = "released"


class DeliveryHandle(ABC):
    """A backend's side of one received message: the broker calls that settle it.

    A backend builds one per message it fetches, keeping in it whatever settling the message
    needs (an SQS receipt handle, a Kafka record and its partition, a Service Bus message), and
    hands it to the core as :attr:`Delivery.handle`. Users reach the broker's raw data through
    it (``delivery.handle.offset`` on Kafka, for example); each backend documents its handle.

    Only :class:`Delivery` calls these methods, each time after checking the delivery is still
    pending. When one raises, the delivery stays pending: the caller may nack it, and a closing
    subscription returns it with :meth:`release`. The delivery's state is the core's; a handle
    never changes it.
    """

    __slots__ = ()

    @abstractmethod
    async def ack(self) -> None:
        """The message was handled: the broker must not deliver it again."""

    @abstractmethod
    async def nack(self, delay: float, reason: str | None) -> None:
        """Deliver the message again after ``delay`` seconds (never negative). Past the
        backend's attempt limit, move it to the dead-letter destination with ``reason``."""

    @abstractmethod
    async def extend(self, seconds: float) -> None:
        """Keep the message from other consumers for ``seconds`` more from now."""

    async def dead_letter(self, reason: str) -> None:
        """Move the message to the dead-letter destination now, keeping ``reason``.

        The default raises :class:`NotImplementedError`: the queue type has no dead-letter
        destination (a consumer then keeps the message on the queue instead).
        """
        raise NotImplementedError(
            f"{type(self).__name__}: this queue type has no dead-letter destination"
        )

    async def release(self) -> None:
        """Give back a message that was not handled (a subscription closing); the default is
        an immediate nack. Backends that can return a message without counting an attempt
        override this."""
        await self.nack(0.0, None)


@final
class Delivery:
    """A received message that must be settled exactly once: acked, nacked or dead-lettered.

    ``Delivery(message, attempt, handle, *, dead_letter_reason=None)`` is built by a backend's
    :meth:`Subscription._fetch`: ``attempt`` counts deliveries of this message, starting at 1;
    ``handle`` is the backend's :class:`DeliveryHandle`; ``dead_letter_reason`` is set on
    messages read from a dead-letter destination.

    The class is final: backends do not subclass it. Its methods check the state, call the
    handle, and only then change the state, in one place (:func:`_change_state`), which also
    frees the delivery's place in its subscription's in-flight limit.
    """

    __slots__ = ("_state", "_subscription", "attempt", "dead_letter_reason", "handle", "message")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        raise TypeError(
            f"{cls.__name__} cannot subclass Delivery, which is final: a backend builds "
            "Delivery(message, attempt, handle) with its own DeliveryHandle"
        )

    def __init__(
        self,
        message: Message,
        attempt: int,
        handle: DeliveryHandle,
        *,
        dead_letter_reason: str | None = None,
    ) -> None:
        self.message = message
        self.attempt = attempt
        self.handle = handle
        self.dead_letter_reason = dead_letter_reason
        self._state = _PENDING
        self._subscription: Subscription | None = None

    def __repr__(self) -> str:
        return (
            f"Delivery(message_id={self.message.id!r}, attempt={self.attempt}, "
            f"state={self._state.value})"
        )

    @property
    def state(self) -> DeliveryState:
        """Where the delivery is in its life; changed only by its own methods."""
        return self._state

    @property
    def settled(self) -> bool:
        return self._state is not _PENDING

    async def ack(self) -> None:
        """Confirm the message was handled; the broker will not deliver it again."""
        if self._state is not _PENDING:
            _require_pending(self, "ack")
        await self.handle.ack()
        _change_state((self,), _ACKED, self._subscription)

    async def nack(self, delay: float = 0.0, reason: str | None = None) -> None:
        """Hand the message back for redelivery after ``delay`` seconds.

        A backend with an attempt limit moves the message to its dead-letter destination
        instead, keeping ``reason`` (why the last attempt failed) with it.
        """
        _require_pending(self, "nack")
        await self.handle.nack(max(0.0, delay), reason)
        _change_state((self,), DeliveryState.NACKED, self._subscription)

    async def dead_letter(self, reason: str) -> None:
        """Move the message to the dead-letter destination now, with the reason.

        Raises :class:`NotImplementedError` when the queue type has none.
        """
        _require_pending(self, "dead-letter")
        await self.handle.dead_letter(reason)
        _change_state((self,), DeliveryState.DEAD_LETTERED, self._subscription)

    async def extend(self, seconds: float) -> None:
        """Keep the message invisible to other consumers for ``seconds`` more from now."""
        _require_pending(self, "extend")
        await self.handle.extend(seconds)

    async def release(self) -> None:
        """Return an unhandled message to the queue at once (used on shutdown); nothing to do
        when it is settled already."""
        if self._state is not _PENDING:
            return
        await self.handle.release()
        _change_state((self,), DeliveryState.RELEASED, self._subscription)


_PENDING = DeliveryState.PENDING
_ACKED = DeliveryState.ACKED


def _require_pending(delivery: Delivery, action: str) -> None:
    if delivery._state is not _PENDING:
        state = delivery._state.value
        raise DeliveryStateError(
            f"cannot {action} message {delivery.message.id}: it was already {state}"
        )


def _change_state(
    deliveries: Sequence[Delivery], state: DeliveryState, subscription: Subscription | None
) -> None:
    """The one place a delivery's state changes: after its handle's broker call succeeded.

    Tells the subscription that handed the deliveries out (``None`` for one never handed out),
    which frees their places under ``max_in_flight``.
    """
    for delivery in deliveries:
        delivery._state = state
    if subscription is not None:
        subscription._on_settled(deliveries)


class Subscription(ABC):
    """A stream of deliveries from one location; use as an async iterator and context manager.

    ``receive`` hands out at most ``max_in_flight`` unsettled deliveries at a time. ``close``
    stops receiving, gives in-flight deliveries ``drain_timeout`` seconds to be settled, and
    returns everything not settled to the queue, so a shutdown loses nothing and leaves
    nothing invisible.
    """

    def __init__(self, options: SubscribeOptions) -> None:
        self.options = options
        self._buffer: deque[Delivery] = deque()
        self._in_flight: set[Delivery] = set()
        self._settlement = asyncio.Event()
        self._fetch_lock = asyncio.Lock()
        self._closed = False
        self._yield_at = 0.0

    @abstractmethod
    async def _fetch(self, max_messages: int, timeout: float) -> list[Delivery]:
        """Fetch up to ``max_messages``, waiting at most ``timeout`` seconds for the first,
        each as ``Delivery(message, attempt, handle)`` with the backend's own handle.

        Return an empty list on timeout. Called by one task at a time.
        """

    async def _close(self) -> None:  # noqa: B027 - optional hook, empty by design
        """Release the backend's receiver; called last by :meth:`close`."""

    poll_interval: float = 1.0
    """How long one ``_fetch`` may wait when ``receive`` has no deadline; bounds close latency."""

    yield_interval: float = YIELD_INTERVAL
    """Longest stretch, in seconds, that ``receive`` and ``receive_batch`` go on handing out
    deliveries without letting the event loop run other tasks (see :data:`YIELD_INTERVAL`)."""

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def receive(self, timeout: float | None = None) -> Delivery | None:
        """The next delivery; ``None`` when ``timeout`` seconds pass or the subscription closes."""
        if _monotonic() >= self._yield_at:
            await self._yield_to_loop()
        buffer = self._buffer
        if buffer and not self._closed and len(self._in_flight) < self.options.max_in_flight:
            # The common case at a high rate, without _take's coroutine and list.
            delivery = buffer.popleft()
            delivery._subscription = self
            self._in_flight.add(delivery)
            return delivery
        taken = await self._take(1, timeout)
        return taken[0] if taken else None

    async def receive_batch(
        self, max_messages: int, timeout: float | None = None
    ) -> list[Delivery]:
        """Up to ``max_messages`` deliveries at once; an empty list when ``timeout`` seconds pass
        or the subscription closes.

        Returns as soon as at least one delivery is at hand, with whatever else is buffered or
        came in the same broker round trip, never more than ``max_in_flight`` unsettled in all.
        One call and one :meth:`ack_many` per batch cost far less per message than
        :meth:`receive` and :meth:`Delivery.ack` each, which matters at Kafka's rates.
        """
        if max_messages < 1:
            raise ValueError(f"max_messages must be at least 1, not {max_messages}")
        if _monotonic() >= self._yield_at:
            await self._yield_to_loop()
        return await self._take(max_messages, timeout)

    @property
    def buffered(self) -> int:
        """Deliveries fetched and not yet handed out by ``receive`` or ``receive_batch``."""
        return len(self._buffer)

    def _discard_buffered(self, predicate: Callable[[DeliveryHandle], bool]) -> int:
        """Take back the buffered deliveries whose handle ``predicate`` accepts, before they
        are handed out; returns how many. For a backend whose broker will deliver them again
        anyway (Kafka, when a rebalance takes their partition away): they are neither settled
        nor released, so the backend answers for them reaching a consumer again.
        """
        kept = [d for d in self._buffer if not predicate(d.handle)]
        discarded = len(self._buffer) - len(kept)
        if discarded:
            self._buffer.clear()
            self._buffer.extend(kept)
        return discarded

    async def _yield_to_loop(self) -> None:
        """Let the event loop run its other tasks once, then again ``yield_interval`` later.

        Handing out buffered deliveries, and fetching from a client's own buffer, completes
        without suspending; so do acks that are only bookkeeping. A consumer whose handler
        does not wait for I/O would otherwise hold the loop for as long as the buffers last:
        a backend's background work (Kafka's offset commits and group heartbeats, lock
        renewals) and the service's own tasks would wait that long too.
        """
        self._yield_at = _monotonic() + self.yield_interval
        await asyncio.sleep(0)

    async def ack_many(self, deliveries: Sequence[Delivery]) -> None:
        """Ack deliveries of this subscription together, in as few broker calls as it can.

        Every delivery must still be pending, or nothing is acked (:class:`DeliveryStateError`).
        Deliveries the broker refused stay pending, so they can be nacked or are returned on
        close; the :class:`QueueError` raised then names each of them and why. An error that
        fails the whole call (a lost connection) propagates as it is, and every delivery stays
        pending.
        """
        for delivery in deliveries:
            if delivery._state is not _PENDING:
                _require_pending(delivery, "ack")
            if delivery._subscription is not self:
                raise DeliveryStateError(
                    f"cannot ack message {delivery.message.id}: it was not received from "
                    "this subscription"
                )
        if len(set(deliveries)) != len(deliveries):
            raise DeliveryStateError("cannot ack one delivery twice in one ack_many call")
        if not deliveries:
            return
        errors = await self._ack_many([delivery.handle for delivery in deliveries])
        if len(errors) != len(deliveries):
            raise QueueError(
                f"{type(self).__name__}._ack_many returned {len(errors)} outcomes for "
                f"{len(deliveries)} deliveries; every delivery stays pending"
            )
        failed = [(d, e) for d, e in zip(deliveries, errors, strict=True) if e is not None]
        acked = (
            [d for d, e in zip(deliveries, errors, strict=True) if e is None]
            if failed
            else deliveries
        )
        _change_state(acked, _ACKED, self)
        if failed:
            summary = "; ".join(f"{d.message.id}: {e}" for d, e in failed)
            raise QueueError(
                f"ack of {len(failed)} of {len(deliveries)} messages failed, they stay "
                f"pending: {summary}"
            ) from failed[0][1]

    async def _ack_many(self, handles: Sequence[DeliveryHandle]) -> list[Exception | None]:
        """Ack messages at the broker, given their handles (all from this subscription's
        ``_fetch``); one entry per handle, ``None`` where it was acked.

        Must not raise for a single message's failure. The default acks them one by one;
        a backend with a batch call (or with acks that are only bookkeeping) overrides this.
        """
        errors: list[Exception | None] = []
        for handle in handles:
            try:
                await handle.ack()
            except Exception as exc:
                errors.append(exc)
            else:
                errors.append(None)
        return errors

    async def _take(self, limit: int, timeout: float | None) -> list[Delivery]:
        """Hand out up to ``limit`` deliveries, waiting for the first as ``receive`` does."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._closed:
            room = self.options.max_in_flight - len(self._in_flight)
            if room <= 0:
                if not await self._wait_for_settlement(deadline):
                    return []
                continue
            if not self._buffer:
                remaining = self.poll_interval if deadline is None else deadline - time.monotonic()
                if remaining <= 0:
                    return []
                await self._refill(min(remaining, self.poll_interval), limit)
                if not self._buffer:
                    if deadline is not None and time.monotonic() >= deadline:
                        return []
                    continue
            buffer = self._buffer
            count = min(limit, room, len(buffer))
            if count == len(buffer):
                taken = list(buffer)
                buffer.clear()
            else:
                taken = [buffer.popleft() for _ in range(count)]
            for delivery in taken:
                delivery._subscription = self
            self._in_flight.update(taken)
            return taken
        return []

    async def _refill(self, timeout: float, wanted: int) -> None:
        async with self._fetch_lock:
            if self._buffer or self._closed:
                return
            room = self.options.max_in_flight - len(self._in_flight)
            ahead = max(self.options.prefetch, wanted)
            fetched = await self._fetch(max(1, min(ahead, room)), timeout)
            if self.closed:  # closed while fetching: hand nothing out
                await _release_all(fetched)
            else:
                self._buffer.extend(fetched)

    async def _wait_for_settlement(self, deadline: float | None) -> bool:
        self._settlement.clear()
        wait = self.poll_interval if deadline is None else deadline - time.monotonic()
        if wait <= 0:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._settlement.wait(), wait)
        return True

    def _on_settled(self, deliveries: Sequence[Delivery]) -> None:
        """Deliveries handed out by this subscription were settled (or returned), their state
        already changed. Backends may extend this to react, e.g. to fetch again now that there
        is room; call ``super()._on_settled`` first."""
        self._in_flight.difference_update(deliveries)
        self._settlement.set()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Delivery:
        delivery = await self.receive()
        if delivery is None:
            raise StopAsyncIteration
        return delivery

    async def close(self) -> None:
        """Stop receiving; settle or return every message this subscription holds."""
        if self._closed:
            return
        self._closed = True
        async with self._fetch_lock:
            buffered = list(self._buffer)
            self._buffer.clear()
        await _release_all(buffered)
        deadline = time.monotonic() + self.options.drain_timeout
        while self._in_flight and time.monotonic() < deadline:
            self._settlement.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settlement.wait(), deadline - time.monotonic())
        if self._in_flight:
            log.warning("subscription.drain.timeout", returned=len(self._in_flight))
            await _release_all(list(self._in_flight))
        await self._close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def _release_all(deliveries: Sequence[Delivery]) -> None:
    """Return deliveries to their queue, all at once so that a backend that batches its calls
    can; where one fails, the broker's visibility timeout redelivers it later."""
    outcomes = await asyncio.gather(*(d.release() for d in deliveries), return_exceptions=True)
    for delivery, outcome in zip(deliveries, outcomes, strict=True):
        if isinstance(outcome, Exception):
            log.warning(
                "delivery.release.failed", message_id=delivery.message.id, error=str(outcome)
            )
        elif isinstance(outcome, BaseException):
            raise outcome
