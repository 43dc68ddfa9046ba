"""The backend contract: what a plugin implements to publish to and consume from its broker.

A plugin registers a :class:`QueueType` (see :mod:`conductor_events.hookspecs`). The core turns
each enabled type's settings into one :class:`QueueClient` on first use and caches it, so every
publish to ``sqs:...`` goes straight to the SQS client, never through the other plugins.

Consuming is pull-based: :meth:`QueueClient.subscribe` opens a :class:`Subscription`, whose
:meth:`~Subscription.receive` hands out :class:`Delivery` objects one at a time, and
:meth:`~Subscription.receive_batch` and :meth:`~Subscription.ack_many` many at a time, for
consumers whose per-message cost matters. The base classes here carry the parts every backend
would otherwise write again (settlement state, in-flight limits, prefetch buffering, graceful
drain), so a backend implements only the broker calls: ``_fetch``, ``_ack``, ``_nack``,
``_extend`` and optionally ``_dead_letter``, ``_release`` and the batched ``_ack_many``.
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
from typing import TYPE_CHECKING, Generic, Self, TypeVar

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
        settings: the pydantic model of ``conductor.event-queues.<name>.*``.
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


class Delivery(ABC):
    """A received message that must be settled exactly once: acked, nacked or dead-lettered.

    ``attempt`` counts deliveries of this message, starting at 1. ``dead_letter_reason`` is set
    on messages read from a dead-letter destination. Backends subclass this and implement the
    ``_``-prefixed broker calls; the public methods keep the state and tell the subscription.
    """

    __slots__ = ("_subscription", "attempt", "dead_letter_reason", "message", "state")

    def __init__(
        self, message: Message, attempt: int, *, dead_letter_reason: str | None = None
    ) -> None:
        self.message = message
        self.attempt = attempt
        self.dead_letter_reason = dead_letter_reason
        self.state = DeliveryState.PENDING
        self._subscription: Subscription | None = None

    @property
    def settled(self) -> bool:
        return self.state is not DeliveryState.PENDING

    async def ack(self) -> None:
        """Confirm the message was handled; the broker will not deliver it again."""
        if self.state is not _PENDING:
            _require_pending(self, "ack")
        await self._ack()
        self.__mark(DeliveryState.ACKED)

    async def nack(self, delay: float = 0.0, reason: str | None = None) -> None:
        """Hand the message back for redelivery after ``delay`` seconds.

        A backend with an attempt limit moves the message to its dead-letter destination
        instead, keeping ``reason`` (why the last attempt failed) with it.
        """
        _require_pending(self, "nack")
        await self._nack(max(0.0, delay), reason)
        self.__mark(DeliveryState.NACKED)

    async def dead_letter(self, reason: str) -> None:
        """Move the message to the dead-letter destination now, with the reason."""
        _require_pending(self, "dead-letter")
        await self._dead_letter(reason)
        self.__mark(DeliveryState.DEAD_LETTERED)

    async def extend(self, seconds: float) -> None:
        """Keep the message invisible to other consumers for ``seconds`` more from now."""
        _require_pending(self, "extend")
        await self._extend(seconds)

    async def release(self) -> None:
        """Return an unhandled message to the queue at once (used on shutdown)."""
        if self.settled:
            return
        await self._release()
        self.__mark(DeliveryState.RELEASED)

    @abstractmethod
    async def _ack(self) -> None: ...

    @abstractmethod
    async def _nack(self, delay: float, reason: str | None) -> None: ...

    @abstractmethod
    async def _extend(self, seconds: float) -> None: ...

    async def _dead_letter(self, reason: str) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no dead-letter destination")

    async def _release(self) -> None:
        """Undo this delivery; the default is an immediate nack."""
        await self._nack(0.0, None)

    def __mark(self, state: DeliveryState) -> None:
        self.state = state
        if self._subscription is not None:
            self._subscription._on_settled((self,))


_PENDING = DeliveryState.PENDING


def _require_pending(delivery: Delivery, action: str) -> None:
    if delivery.state is not _PENDING:
        raise DeliveryStateError(
            f"cannot {action} message {delivery.message.id}: it was already {delivery.state.value}"
        )


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
        self._settled = asyncio.Event()
        self._fetch_lock = asyncio.Lock()
        self._closed = False
        self._yield_at = 0.0

    @abstractmethod
    async def _fetch(self, max_messages: int, timeout: float) -> list[Delivery]:
        """Fetch up to ``max_messages``, waiting at most ``timeout`` seconds for the first.

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
            if delivery.state is not _PENDING:
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
        errors = await self._ack_many(deliveries)
        failed = [(d, e) for d, e in zip(deliveries, errors, strict=True) if e is not None]
        acked = (
            [d for d, e in zip(deliveries, errors, strict=True) if e is None]
            if failed
            else deliveries
        )
        acked_state = DeliveryState.ACKED
        for delivery in acked:
            delivery.state = acked_state
        self._on_settled(acked)
        if failed:
            summary = "; ".join(f"{d.message.id}: {e}" for d, e in failed)
            raise QueueError(
                f"ack of {len(failed)} of {len(deliveries)} messages failed, they stay "
                f"pending: {summary}"
            ) from failed[0][1]

    async def _ack_many(self, deliveries: Sequence[Delivery]) -> list[Exception | None]:
        """Ack deliveries at the broker; one entry per delivery, ``None`` where it was acked.

        Must not raise for a single delivery's failure. The default acks them one by one;
        a backend with a batch call (or with acks that are only bookkeeping) overrides this.
        """
        errors: list[Exception | None] = []
        for delivery in deliveries:
            try:
                await delivery._ack()
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
        self._settled.clear()
        wait = self.poll_interval if deadline is None else deadline - time.monotonic()
        if wait <= 0:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._settled.wait(), wait)
        return True

    def _on_settled(self, deliveries: Sequence[Delivery]) -> None:
        """Deliveries were settled (or returned). Backends may extend this to react, e.g. to
        fetch again now that there is room; call ``super()._on_settled`` first."""
        self._in_flight.difference_update(deliveries)
        self._settled.set()

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
            self._settled.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settled.wait(), deadline - time.monotonic())
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
