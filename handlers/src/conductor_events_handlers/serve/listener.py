"""One event's listener: subscribe, hand deliveries to the handlers, reconnect, stop cleanly.

A listener runs until asked to stop. It subscribes to its event; a subscription that cannot
be opened, or that fails while receiving, is closed (returning what it holds) and opened
again after a capped exponential backoff with jitter, without touching the other listeners.
An unexpected error in the loop is handled the same way: the listener restarts.

Up to ``concurrency`` messages are handled at once. Stopping: no more receiving; messages in
hand are finished until the deadline, the ones still running then are cancelled, and closing
the subscription returns every unsettled message to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from conductor_events.backend import SubscribeOptions
from conductor_events_handlers.serve.backoff import Backoff

if TYPE_CHECKING:
    from conductor_events.backend import Delivery, Subscription
    from conductor_events.event_queues import EventQueues
    from conductor_events_handlers.processor import HandlerProcessor
    from conductor_events_handlers.serve.metrics import ServiceMetrics

log = structlog.get_logger(__name__)

RECEIVE_WAIT = 0.25
"""Longest one receive waits, so a stop request is seen this quickly on an idle queue."""

CLOSE_DRAIN = 1.0
"""Seconds closing a subscription waits for stragglers before returning them to the queue."""


class ListenerState(enum.StrEnum):
    STARTING = "starting"
    CONNECTED = "connected"
    BACKOFF = "backoff"
    STOPPING = "stopping"
    STOPPED = "stopped"


class Listener:
    """Consumes one event with its own processor and concurrency limit.

    Args:
        event: the event string (``type:location``).
        queues: where to subscribe.
        processor: runs the event's handlers and settles each delivery.
        metrics: where to count.
        concurrency: messages handled at once.
        backoff: delays between reconnects and restarts.
        stop_check: an extra stop condition, looked at between messages (the service's
            signal flag, which is set outside the event loop).
        stop_deadline: the monotonic deadline of a stop requested through ``stop_check``.
    """

    def __init__(
        self,
        event: str,
        queues: EventQueues,
        processor: HandlerProcessor,
        metrics: ServiceMetrics,
        *,
        concurrency: int = 10,
        backoff: Backoff | None = None,
        stop_check: Callable[[], bool] = lambda: False,
        stop_deadline: Callable[[], float | None] = lambda: None,
    ) -> None:
        self.event = event
        self.queues = queues
        self.processor = processor
        self.metrics = metrics
        self.concurrency = concurrency
        self.backoff = backoff or Backoff()
        self.state = ListenerState.STARTING
        self.error: str | None = None
        self.restarts = 0
        self.received = 0
        self._stop_check = stop_check
        self._external_deadline = stop_deadline
        self._stop = asyncio.Event()
        self._deadline: float | None = None
        self._handling: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        metrics.listener_added(event)
        self._set_state(ListenerState.STARTING)

    # -- control ---------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"listener {self.event}")

    def stop(self, deadline: float) -> None:
        """Stop receiving; finish messages in hand until ``deadline`` (monotonic)."""
        if self._deadline is None or deadline < self._deadline:
            self._deadline = deadline
        self._stop.set()

    async def wait(self) -> None:
        """Until the listener has stopped and returned everything it held."""
        if self._task is not None:
            await asyncio.shield(self._task)

    def stop_requested(self) -> bool:
        return self._stop.is_set() or self._stop_check()

    @property
    def done(self) -> bool:
        return self._task is not None and self._task.done()

    def failure(self) -> str | None:
        """Why the listener's task ended, when it ended with an error."""
        if self._task is None or not self._task.done() or self._task.cancelled():
            return None
        exc = self._task.exception()
        return None if exc is None else f"{type(exc).__name__}: {exc}"

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    @property
    def in_flight(self) -> int:
        return len(self._handling)

    def status(self) -> dict[str, object]:
        """The listener as ``/ready`` shows it."""
        return {
            "state": self.state.value,
            "error": self.error,
            "restarts": self.restarts,
            "received": self.received,
            "in_flight": self.in_flight,
        }

    # -- the loop --------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while not self.stop_requested():
                subscription = await self._subscribe()
                if subscription is None:
                    continue
                failure: BaseException | None = None
                try:
                    await self._consume(subscription)
                except Exception as exc:  # a broken connection or a defect: restart
                    failure = exc
                await self._finish(subscription)
                if failure is not None:
                    await self._back_off("serve.listener.failed", failure)
        finally:
            self._set_state(ListenerState.STOPPED)
            log.info("serve.listener.stopped", queue_event=self.event)

    async def _subscribe(self) -> Subscription | None:
        options = SubscribeOptions(
            max_in_flight=self.concurrency,
            prefetch=self.concurrency,
            drain_timeout=CLOSE_DRAIN,
        )
        try:
            subscription = await self.queues.subscribe(self.event, options)
        except Exception as exc:
            await self._back_off("serve.listener.unavailable", exc)
            return None
        self.error = None
        self._set_state(ListenerState.CONNECTED)
        log.info("serve.listener.connected", queue_event=self.event)
        return subscription

    async def _consume(self, subscription: Subscription) -> None:
        while not self.stop_requested():
            if len(self._handling) >= self.concurrency:
                # Every slot is busy: wait for one, but look at the stop request meanwhile.
                await asyncio.wait(
                    list(self._handling),
                    timeout=RECEIVE_WAIT,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                continue
            delivery = await subscription.receive(timeout=RECEIVE_WAIT)
            if delivery is None:
                continue
            self.backoff.reset()
            self.received += 1
            self.metrics.received.labels(self.event).inc()
            task = asyncio.create_task(self._handle(delivery))
            self._handling.add(task)
            task.add_done_callback(self._handling.discard)

    async def _handle(self, delivery: Delivery) -> None:
        gauge = self.metrics.in_flight.labels(self.event)
        gauge.inc()
        started = time.perf_counter()
        try:
            outcome = await self.processor.process(self.event, delivery)
            self.metrics.record(outcome, time.perf_counter() - started)
        except asyncio.CancelledError:  # the shutdown deadline passed: back to the queue now
            with contextlib.suppress(Exception):
                await delivery.release()
            raise
        except Exception:  # process() settles and never raises; a defect must not stop us
            log.exception("serve.message.error", queue_event=self.event)
            with contextlib.suppress(Exception):
                await delivery.release()
        finally:
            gauge.dec()

    async def _finish(self, subscription: Subscription) -> None:
        """Let the messages in hand finish (until the deadline), then close the subscription,
        which returns whatever is still unsettled."""
        if self.stop_requested():
            self._set_state(ListenerState.STOPPING)
        if self._handling:
            deadline = self._stop_deadline()
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            _, pending = await asyncio.wait(list(self._handling), timeout=timeout)
            if pending:
                log.warning(
                    "serve.listener.shutdown_timeout",
                    queue_event=self.event,
                    returned=len(pending),
                )
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending)
        try:
            await subscription.close()
        except Exception as exc:  # unsettled messages come back by the broker's timeout
            log.warning("serve.listener.close_failed", queue_event=self.event, error=str(exc))

    def _stop_deadline(self) -> float | None:
        if self._deadline is not None:
            return self._deadline
        if self._stop_check():
            return self._external_deadline()
        return None

    async def _back_off(self, what: str, exc: BaseException) -> None:
        delay = self.backoff.next_delay()
        self.restarts += 1
        self.metrics.restarts.labels(self.event).inc()
        self.error = f"{type(exc).__name__}: {exc}"
        self._set_state(ListenerState.BACKOFF)
        log.warning(what, queue_event=self.event, error=self.error, retry_in=round(delay, 3))
        deadline = time.monotonic() + delay
        while not self.stop_requested() and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), min(RECEIVE_WAIT, delay))

    def _set_state(self, state: ListenerState) -> None:
        self.state = state
        self.metrics.set_state(self.event, state.value)
