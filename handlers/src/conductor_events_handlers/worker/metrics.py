"""The worker's Prometheus metrics, in a registry of its own (never the global one).

===================================================================  ==========================
``conductor_events_worker_polls_total{task_type,result}``            ``tasks``, ``empty``,
                                                                     ``error``
``conductor_events_worker_tasks_received_total{task_type}``          tasks handed out by polls
``conductor_events_worker_tasks_updated_total{task_type,status}``    updates Conductor accepted:
                                                                     ``COMPLETED``,
                                                                     ``IN_PROGRESS``, ``FAILED``
``conductor_events_worker_update_retries_total{task_type}``          update attempts that failed
                                                                     and were tried again
``conductor_events_worker_update_failures_total{task_type,reason}``  updates given up:
                                                                     ``rejected`` (a 4xx),
                                                                     ``abandoned`` (stop
                                                                     deadline)
``conductor_events_worker_publishes_skipped_total{task_type}``       tasks polled again whose
                                                                     publish was already done
``conductor_events_worker_task_seconds{task_type}``                  histogram: poll to update
``conductor_events_worker_in_flight``                                tasks held now
``conductor_events_worker_poller_state{task_type,state}``            1 for the current state
===================================================================  ==========================
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

POLLER_STATES = ("starting", "polling", "backoff", "stopped")
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class TaskTypeMetrics:
    """One task type's per-task series, each labelled once: looking a labelled series up
    costs about as much as counting in it, and these are counted for every task. Series
    that appear with their first value (updates by status, the latency histogram) are
    still created then, not before."""

    __slots__ = ("_latency", "_metrics", "_task_type", "_updated", "received", "skipped")

    def __init__(self, metrics: WorkerMetrics, task_type: str) -> None:
        self._metrics = metrics
        self._task_type = task_type
        self.received = metrics.received.labels(task_type)
        self.skipped = metrics.publishes_skipped.labels(task_type)
        self._updated: dict[str, Counter] = {}
        self._latency: Histogram | None = None

    def updated(self, status: str) -> None:
        """Count an update Conductor accepted."""
        counter = self._updated.get(status)
        if counter is None:
            counter = self._updated[status] = self._metrics.updated.labels(self._task_type, status)
        counter.inc()

    def observe_latency(self, seconds: float) -> None:
        if self._latency is None:
            self._latency = self._metrics.latency.labels(self._task_type)
        self._latency.observe(seconds)


class WorkerMetrics:
    """Every metric the worker exports; :meth:`render` is the ``/metrics`` body."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        prefix = "conductor_events_worker"
        self.polls = Counter(
            f"{prefix}_polls",
            "Polls, by result: tasks, empty, error.",
            ["task_type", "result"],
            registry=self.registry,
        )
        self.received = Counter(
            f"{prefix}_tasks_received",
            "Tasks handed to this worker by its polls.",
            ["task_type"],
            registry=self.registry,
        )
        self.updated = Counter(
            f"{prefix}_tasks_updated",
            "Task updates Conductor accepted, by the status sent.",
            ["task_type", "status"],
            registry=self.registry,
        )
        self.update_retries = Counter(
            f"{prefix}_update_retries",
            "Task updates that failed and were tried again (the publish is not repeated).",
            ["task_type"],
            registry=self.registry,
        )
        self.update_failures = Counter(
            f"{prefix}_update_failures",
            "Task updates given up: rejected by Conductor, or abandoned at the stop deadline "
            "(the task comes back after its response timeout).",
            ["task_type", "reason"],
            registry=self.registry,
        )
        self.publishes_skipped = Counter(
            f"{prefix}_publishes_skipped",
            "Tasks polled again after their publish was done; the remembered result is sent.",
            ["task_type"],
            registry=self.registry,
        )
        self.latency = Histogram(
            f"{prefix}_task_seconds",
            "Seconds from a task's poll to its accepted update.",
            ["task_type"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(f"{prefix}_in_flight", "Tasks held now.", registry=self.registry)
        self.poller_state = Gauge(
            f"{prefix}_poller_state",
            "1 for the state each task type's poller is in, 0 for the others.",
            ["task_type", "state"],
            registry=self.registry,
        )

    def poller_added(self, task_type: str) -> TaskTypeMetrics:
        """Create a task type's series at zero, so they are exported before the first poll;
        returns them bound to the task type for the per-task path."""
        for result in ("tasks", "empty", "error"):
            self.polls.labels(task_type, result)
        self.received.labels(task_type)
        self.update_retries.labels(task_type)
        self.publishes_skipped.labels(task_type)
        return TaskTypeMetrics(self, task_type)

    def set_state(self, task_type: str, state: str) -> None:
        for known in POLLER_STATES:
            self.poller_state.labels(task_type, known).set(1 if known == state else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
