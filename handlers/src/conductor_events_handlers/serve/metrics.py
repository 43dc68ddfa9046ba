"""The service's Prometheus metrics, in a registry of its own (never the global one).

=========================================================  ====================================
``conductor_events_messages_received_total{event}``          deliveries handed to handlers
``conductor_events_messages_settled_total{event,disposition}``  ``acked``, ``nacked``,
                                                             ``dead-lettered``
``conductor_events_settle_failures_total{event}``            settlements the broker refused
                                                             (the message comes back by its
                                                             timeout)
``conductor_events_action_executions_total{event,handler,action,status}``
                                                             ``COMPLETED``, ``ALREADY_DONE``,
                                                             ``FAILED``
``conductor_events_handling_seconds{event}``                 histogram: receive to settlement
``conductor_events_in_flight{event}``                        messages being handled now
``conductor_events_listener_state{event,state}``             1 for the listener's current state
``conductor_events_listener_restarts_total{event}``          reconnects and crash restarts
``conductor_events_handler_reloads_total{result}``           ``applied``, ``rejected``
=========================================================  ====================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from conductor_events_handlers.processor import MessageOutcome

LISTENER_STATES = ("starting", "connected", "backoff", "stopping", "stopped")
DISPOSITIONS = ("acked", "nacked", "dead-lettered")
_LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


class ServiceMetrics:
    """Every metric the service exports; :meth:`render` is the ``/metrics`` body."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        prefix = "conductor_events"
        self.received = Counter(
            f"{prefix}_messages_received",
            "Messages received from an event's queue and handed to its handlers.",
            ["event"],
            registry=self.registry,
        )
        self.settled = Counter(
            f"{prefix}_messages_settled",
            "Messages settled, by disposition: acked, nacked, dead-lettered.",
            ["event", "disposition"],
            registry=self.registry,
        )
        self.settle_failures = Counter(
            f"{prefix}_settle_failures",
            "Settlements the broker refused; the message comes back by its visibility timeout.",
            ["event"],
            registry=self.registry,
        )
        self.actions = Counter(
            f"{prefix}_action_executions",
            "Handler actions, by handler, action and status.",
            ["event", "handler", "action", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            f"{prefix}_handling_seconds",
            "Seconds from receiving a message to settling it.",
            ["event"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            f"{prefix}_in_flight",
            "Messages being handled now.",
            ["event"],
            registry=self.registry,
        )
        self.listener_state = Gauge(
            f"{prefix}_listener_state",
            "1 for the state each event's listener is in, 0 for the others.",
            ["event", "state"],
            registry=self.registry,
        )
        self.restarts = Counter(
            f"{prefix}_listener_restarts",
            "Listener reconnects after a queue error and restarts after a crash.",
            ["event"],
            registry=self.registry,
        )
        self.reloads = Counter(
            f"{prefix}_handler_reloads",
            "Handler reloads: applied, or rejected because the new definitions have problems.",
            ["result"],
            registry=self.registry,
        )

    def listener_added(self, event: str) -> None:
        """Create an event's series at zero, so they are exported before the first message."""
        self.received.labels(event)
        self.settle_failures.labels(event)
        self.restarts.labels(event)
        self.in_flight.labels(event)
        for disposition in DISPOSITIONS:
            self.settled.labels(event, disposition)

    def set_state(self, event: str, state: str) -> None:
        for known in LISTENER_STATES:
            self.listener_state.labels(event, known).set(1 if known == state else 0)

    def record(self, outcome: MessageOutcome, seconds: float) -> None:
        """Count one handled message."""
        event = outcome.event
        self.settled.labels(event, outcome.disposition.value).inc()
        if outcome.settle_error is not None:
            self.settle_failures.labels(event).inc()
        for handler in outcome.handlers:
            for action in handler.actions:
                self.actions.labels(
                    event, handler.handler, action.action, action.status.value
                ).inc()
        self.latency.labels(event).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
