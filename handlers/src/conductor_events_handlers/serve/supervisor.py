"""The service: one listener per event of the active handlers, kept in line with the handler
files, stopped gracefully.

:class:`Supervisor` loads the handlers, starts a
:class:`~conductor_events_handlers.serve.listener.Listener` for each distinct event, and then
looks every tick for a stop request, a SIGHUP, or changed
handler files. A reload that loads without problems is applied at once: listeners of events
that remain get the new handlers for their next message, new events start listening, removed
ones stop receiving and finish their messages in hand (they keep the handlers they had, so
nothing in flight is treated as unhandled). A reload with problems is logged and ignored; the
running handlers stay.

Stop: every listener stops receiving, messages in hand get until the shutdown deadline to
finish, then the rest are returned to their queue and the subscriptions closed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from conductor_events_handlers.processor import HandlerProcessor
from conductor_events_handlers.serve.backoff import Backoff
from conductor_events_handlers.serve.listener import CLOSE_DRAIN, Listener, ListenerState

if TYPE_CHECKING:
    from conductor_events.event_queues import EventQueues
    from conductor_events_handlers.registry import HandlerSet
    from conductor_events_handlers.serve.metrics import ServiceMetrics
    from conductor_events_handlers.serve.reload import HandlerSource
    from conductor_events_handlers.serve.signals import ServiceSignals

log = structlog.get_logger(__name__)

TICK = 0.1
"""Seconds between the supervisor's looks at its signal flags."""


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """How the service runs.

    Attributes:
        concurrency: messages of one event handled at once.
        shutdown_timeout: seconds messages in hand get to finish on a stop.
        reload_interval: seconds between checks of the handler files; 0 turns them off.
        initial_backoff, max_backoff: a listener's reconnect delays.
    """

    concurrency: int = 10
    shutdown_timeout: float = 30.0
    reload_interval: float = 2.0
    initial_backoff: float = 1.0
    max_backoff: float = 60.0


class Supervisor:
    """Runs listeners for the handlers of ``source`` until ``signals`` asks for a stop.

    Args:
        queues: the event queues.
        source: the handler files.
        base: a processor built from the service's settings; each listener gets a processor
            of its own sharing its condition engines, executor, execution records, ack policy
            and visibility renewal, so one event's handlers can change without touching
            another's messages.
        metrics: where to count.
        signals: the stop and reload flags.
        options: concurrency, timeouts, backoff.
    """

    def __init__(
        self,
        queues: EventQueues,
        source: HandlerSource,
        base: HandlerProcessor,
        metrics: ServiceMetrics,
        signals: ServiceSignals,
        options: ServeOptions,
    ) -> None:
        self.queues = queues
        self.source = source
        self.base = base
        self.metrics = metrics
        self.signals = signals
        self.options = options
        self.listeners: dict[str, Listener] = {}
        self.retiring: list[Listener] = []
        self.started = False
        self.stopping = False

    # -- status ----------------------------------------------------------------------------

    def status(self) -> tuple[bool, dict[str, Any]]:
        """Ready when started, not stopping, and every listener connected."""
        listeners = {event: listener.status() for event, listener in self.listeners.items()}
        ready = (
            self.started
            and not self.stopping
            and all(one.state is ListenerState.CONNECTED for one in self.listeners.values())
        )
        return ready, {"listeners": listeners}

    # -- running ---------------------------------------------------------------------------

    def start(self, handlers: HandlerSet) -> None:
        """Start listening for ``handlers`` (already loaded without problems)."""
        self.apply(handlers)
        self.started = True
        log.info("serve.started", events=sorted(self.listeners), handlers=len(handlers))

    async def run(self) -> None:
        """Watch for reloads and the stop request; return once everything is stopped."""
        next_check = time.monotonic() + self.options.reload_interval
        while not self.signals.stop.is_set():
            await asyncio.sleep(TICK)
            self._reap()
            if self.signals.reload.is_set():
                self.signals.reload.clear()
                self.reload("SIGHUP")
            elif self.options.reload_interval > 0 and time.monotonic() >= next_check:
                next_check = time.monotonic() + self.options.reload_interval
                if self.source.changed():
                    self.reload("files changed")
        await self.shutdown()

    def reload(self, why: str) -> bool:
        """Load the handler files again and apply them; keep the running ones on problems."""
        result = self.source.load()
        if result.problems:
            self.metrics.reloads.labels("rejected").inc()
            for problem in result.problems:
                log.error("serve.reload.problem", problem=str(problem))
            log.error(
                "serve.reload.rejected",
                reason=why,
                problems=len(result.problems),
                hint="the handlers loaded before keep running",
            )
            return False
        self.apply(result.handlers)
        self.metrics.reloads.labels("applied").inc()
        log.info("serve.reloaded", reason=why, events=sorted(self.listeners))
        return True

    def apply(self, handlers: HandlerSet) -> None:
        """Listeners for exactly the events of ``handlers``."""
        wanted = handlers.events()
        for event, listener in list(self.listeners.items()):
            if event in wanted:
                listener.processor.handlers = handlers
            else:
                log.info("serve.listener.removed", queue_event=event)
                listener.stop(time.monotonic() + self.options.shutdown_timeout)
                self.retiring.append(listener)
                del self.listeners[event]
        for event in wanted:
            if event not in self.listeners:
                listener = self._listener(event, handlers)
                self.listeners[event] = listener
                listener.start()
                log.info("serve.listener.added", queue_event=event)

    def _listener(self, event: str, handlers: HandlerSet) -> Listener:
        return Listener(
            event,
            self.queues,
            self.base.with_handlers(handlers),
            self.metrics,
            concurrency=self.options.concurrency,
            backoff=Backoff(self.options.initial_backoff, self.options.max_backoff),
            stop_check=self.signals.stop.is_set,
            stop_deadline=self._shutdown_deadline,
        )

    def _shutdown_deadline(self) -> float | None:
        requested = self.signals.stop_requested_at
        return None if requested is None else requested + self.options.shutdown_timeout

    def _reap(self) -> None:
        """Forget retired listeners that have stopped; replace any active listener whose task
        ended on its own (a defect outside its restart loop), so its event keeps a listener."""
        self.retiring = [listener for listener in self.retiring if not listener.done]
        for event, listener in list(self.listeners.items()):
            if listener.done and not self.signals.stop.is_set():
                log.error("serve.listener.ended", queue_event=event, error=listener.failure())
                replacement = self._listener(event, listener.processor.handlers)
                replacement.restarts = listener.restarts + 1
                self.metrics.restarts.labels(event).inc()
                self.listeners[event] = replacement
                replacement.start()

    async def shutdown(self) -> None:
        """Stop every listener: finish or return messages in hand within the timeout."""
        self.stopping = True
        deadline = self._shutdown_deadline() or time.monotonic() + self.options.shutdown_timeout
        log.info(
            "serve.stopping",
            signal=self.signals.stop_signal,
            timeout=self.options.shutdown_timeout,
        )
        everyone = [*self.listeners.values(), *self.retiring]
        for listener in everyone:
            listener.stop(deadline)
        # Each listener returns its messages within the deadline and a close; one stuck in a
        # broker call (a connect that hangs) is cancelled after that: the broker's visibility
        # timeout then brings back whatever it held.
        grace = max(0.0, deadline - time.monotonic()) + 2 * CLOSE_DRAIN + 5.0
        waiting = [asyncio.ensure_future(listener.wait()) for listener in everyone]
        if waiting:
            _, stuck = await asyncio.wait(waiting, timeout=grace)
            for listener in everyone:
                if not listener.done:
                    log.warning("serve.listener.cancelled", queue_event=listener.event)
                    listener.cancel()
            if stuck:
                await asyncio.wait(stuck, timeout=CLOSE_DRAIN)
        log.info("serve.stopped", received=sum(one.received for one in everyone))
