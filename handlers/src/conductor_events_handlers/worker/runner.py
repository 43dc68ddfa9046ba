"""The worker loop: poll Conductor for tasks, publish each as an EVENT task, update it.

One poller per task type long-polls ``GET /tasks/poll/batch/{taskType}`` for as many tasks as
there are free slots (``concurrency`` over all task types). Each task holds its slot while it
is published (:func:`~conductor_events.event_task.execute_event_task`, the ``publish``
command's and Conductor's EVENT semantics) and until Conductor accepted its update.

Delivery guarantee, per task id:

* the update is sent only after the broker confirmed the publish (or with FAILED and the
  reason when it did not);
* the result is kept while the update is retried (capped exponential backoff with jitter), so
  a lost or refused update never publishes again; a task Conductor hands out again while this
  worker still holds its result (an ``asyncComplete`` task after ``callbackAfterSeconds``, or
  a poll answer that was lost and re-queued) is updated from the kept result, not published;
* what this process never updated (it was killed, or its stop deadline passed) is left to
  Conductor: after the task's ``responseTimeoutSeconds`` it is timed out and retried, and the
  retry is published again. Consumers dedupe by message id (the task id; see docs/worker.md
  for retries under a new task id).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from conductor_events.event_task import EventTask, TaskResult, TaskStatus, execute_event_task
from conductor_events_handlers.client import ConductorError
from conductor_events_handlers.serve.backoff import Backoff

if TYPE_CHECKING:
    from conductor_events.event_queues import EventQueues
    from conductor_events_handlers.client import ConductorClient
    from conductor_events_handlers.worker.metrics import TaskTypeMetrics, WorkerMetrics

log = structlog.get_logger(__name__)

TICK = 0.1
"""Seconds between looks at the stop flag while waiting for a free slot or a backoff."""

REMEMBERED = 100_000
"""IN_PROGRESS results kept after their update, for tasks Conductor hands out again."""


class PollerState(enum.StrEnum):
    STARTING = "starting"
    POLLING = "polling"
    BACKOFF = "backoff"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """How the worker runs (``conductor.event-worker.*`` and the command's options).

    Attributes:
        task_types: the task types polled.
        worker_id: ``workerid`` of polls and updates.
        domain: the task domain polled, or ``None``.
        poll_count: most tasks asked for in one poll.
        poll_timeout: seconds the server may hold a poll open.
        concurrency: tasks held at once, over all task types.
        initial_backoff, max_backoff: retry delays of polls and updates.
        in_progress_callback: ``callbackAfterSeconds`` of an ``asyncComplete`` task's update.
        shutdown_timeout: seconds tasks in hand get to finish on a stop.
    """

    task_types: tuple[str, ...] = ("event_publish",)
    worker_id: str = "conductor-events"
    domain: str | None = None
    poll_count: int = 20
    poll_timeout: float = 1.0
    concurrency: int = 32
    initial_backoff: float = 0.2
    max_backoff: float = 30.0
    in_progress_callback: float = 3600.0
    shutdown_timeout: float = 30.0


@dataclass
class _Slots:
    """Free task slots, shared by the pollers: a poll asks for at most the free ones."""

    free: int
    freed: asyncio.Event = field(default_factory=asyncio.Event)

    def take(self, wanted: int) -> int:
        taken = min(wanted, self.free)
        self.free -= taken
        return taken

    def give(self, count: int) -> None:
        if count > 0:
            self.free += count
            self.freed.set()


class TaskWorker:
    """Polls and executes EVENT tasks until ``stop`` is set, then finishes the tasks in hand.

    Args:
        queues: where the tasks' sinks are resolved and published to.
        client: the Conductor client (``conductor.server.*``).
        options: what to poll and how.
        metrics: where to count.
        stop: the stop flag (set from a signal handler, outside the event loop).
        stop_requested_at: when the stop was asked for (monotonic), for the deadline.
    """

    def __init__(
        self,
        queues: EventQueues,
        client: ConductorClient,
        options: WorkerOptions,
        metrics: WorkerMetrics,
        stop: threading.Event,
        stop_requested_at: Callable[[], float | None] = lambda: None,
    ) -> None:
        self.queues = queues
        self.client = client
        self.options = options
        self.metrics = metrics
        self._stop = stop
        self._stop_requested_at = stop_requested_at
        self.states = dict.fromkeys(options.task_types, PollerState.STARTING)
        self.errors: dict[str, str | None] = dict.fromkeys(options.task_types)
        self.started = False
        self.stopping = False
        self._results: OrderedDict[str, TaskResult] = OrderedDict()
        """Task id -> its result, from the publish until the update is accepted (and longer
        for IN_PROGRESS results, up to :data:`REMEMBERED` of them)."""
        self._updating: set[str] = set()
        self._held: set[asyncio.Task[None]] = set()
        self._slots = _Slots(options.concurrency)
        self._counts: dict[str, TaskTypeMetrics] = {}
        """Each task type's per-task series, labelled once."""
        for task_type in options.task_types:
            self._counts[task_type] = metrics.poller_added(task_type)
            metrics.set_state(task_type, PollerState.STARTING)

    # -- status ----------------------------------------------------------------------------

    def status(self) -> tuple[bool, dict[str, Any]]:
        """Ready when started, not stopping, and every poller's last poll succeeded."""
        pollers = {
            task_type: {"state": state.value, "error": self.errors[task_type]}
            for task_type, state in self.states.items()
        }
        ready = (
            self.started
            and not self.stopping
            and all(state is PollerState.POLLING for state in self.states.values())
        )
        return ready, {"pollers": pollers, "in_flight": len(self._held)}

    # -- running ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Poll until the stop flag is set; return once the tasks in hand are done (or the
        shutdown deadline passed: those are left to Conductor's response timeout)."""
        pollers = [asyncio.ensure_future(self._poll_loop(t)) for t in self.options.task_types]
        self.started = True
        log.info(
            "worker.started",
            task_types=list(self.options.task_types),
            domain=self.options.domain,
            worker_id=self.options.worker_id,
            concurrency=self.options.concurrency,
        )
        try:
            while not self._stop.is_set():
                await asyncio.sleep(TICK)
                for poller in pollers:
                    if poller.done():  # a defect outside the poll loop's own error handling
                        poller.result()
        finally:
            self.stopping = True
            await self._shutdown(pollers)

    def _deadline(self) -> float:
        requested = self._stop_requested_at()
        start = requested if requested is not None else time.monotonic()
        return start + self.options.shutdown_timeout

    async def _shutdown(self, pollers: list[asyncio.Task[None]]) -> None:
        log.info("worker.stopping", in_flight=len(self._held))
        deadline = self._deadline()
        # A poll in progress returns within the poll timeout; its tasks are this worker's and
        # are executed like the others.
        await asyncio.wait(pollers, timeout=max(0.0, deadline - time.monotonic()) + 1.0)
        for poller in pollers:
            poller.cancel()
        held = list(self._held)
        if held:
            await asyncio.wait(held, timeout=max(0.0, deadline - time.monotonic()) + 1.0)
        left = [task for task in self._held if not task.done()]
        for task in left:
            task.cancel()
        if left:
            log.warning(
                "worker.tasks.abandoned",
                count=len(left),
                then="Conductor times them out after their response timeout and retries them",
            )
            await asyncio.wait(left, timeout=1.0)
        for task_type in self.options.task_types:
            self._set_state(task_type, PollerState.STOPPED)
        log.info("worker.stopped")

    def _set_state(self, task_type: str, state: PollerState, error: str | None = None) -> None:
        if self.states[task_type] is not state:  # set after every poll: mostly unchanged
            self.metrics.set_state(task_type, state)
        self.states[task_type] = state
        self.errors[task_type] = error

    async def _poll_loop(self, task_type: str) -> None:
        backoff = Backoff(self.options.initial_backoff, self.options.max_backoff)
        timeout_ms = int(self.options.poll_timeout * 1000)
        while not self._stop.is_set():
            wanted = await self._free_slots()
            if wanted == 0:
                continue
            try:
                tasks = await self.client.poll_tasks(
                    task_type,
                    count=wanted,
                    timeout_ms=timeout_ms,
                    worker_id=self.options.worker_id,
                    domain=self.options.domain,
                )
            except ConductorError as exc:
                self._slots.give(wanted)
                self.metrics.polls.labels(task_type, "error").inc()
                delay = backoff.next_delay()
                self._set_state(task_type, PollerState.BACKOFF, exc.message)
                log.warning(
                    "worker.poll.failed", task_type=task_type, error=exc.message, retry_in=delay
                )
                await self._sleep(delay)
                continue
            backoff.reset()
            self._set_state(task_type, PollerState.POLLING)
            self._slots.give(wanted - len(tasks))
            self.metrics.polls.labels(task_type, "tasks" if tasks else "empty").inc()
            for raw in tasks[:wanted]:
                self._hold(task_type, raw)
            if len(tasks) > wanted:  # more than asked for: still executed, never dropped
                for raw in tasks[wanted:]:
                    self._slots.free -= 1
                    self._hold(task_type, raw)

    async def _free_slots(self) -> int:
        """Reserve up to ``poll_count`` free slots, waiting (and watching the stop flag)
        while there are none."""
        while not self._stop.is_set():
            taken = self._slots.take(self.options.poll_count)
            if taken:
                return taken
            self._slots.freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._slots.freed.wait(), TICK)
        return 0

    async def _sleep(self, seconds: float) -> None:
        """Sleep, waking early on a stop request."""
        for _ in range(max(1, math.ceil(seconds / TICK))):
            if self._stop.is_set():
                return
            await asyncio.sleep(min(TICK, seconds))

    def _hold(self, task_type: str, raw: Mapping[str, Any]) -> None:
        self._counts[task_type].received.inc()
        handling = asyncio.ensure_future(self._handle(task_type, raw, time.monotonic()))
        self._held.add(handling)
        self.metrics.in_flight.set(len(self._held))

        def release(done: asyncio.Task[None]) -> None:
            self._held.discard(done)
            self._slots.give(1)
            self.metrics.in_flight.set(len(self._held))
            if not done.cancelled() and done.exception() is not None:
                log.error(
                    "worker.task.crashed",
                    task_id=raw.get("taskId"),
                    error=repr(done.exception()),
                    then="Conductor retries the task after its response timeout",
                )

        handling.add_done_callback(release)

    # -- one task --------------------------------------------------------------------------

    async def _handle(self, task_type: str, raw: Mapping[str, Any], polled_at: float) -> None:
        task_id = raw.get("taskId")
        workflow_id = raw.get("workflowInstanceId")
        if not isinstance(task_id, str) or not isinstance(workflow_id, str):
            log.error("worker.task.invalid", task_type=task_type, problem="no taskId or workflow")
            return
        counts = self._counts[task_type]
        if task_id in self._updating:
            # Handed out again while its update is being retried: that update covers it.
            counts.skipped.inc()
            return
        result = self._results.get(task_id)
        if result is not None:
            counts.skipped.inc()
            log.info("worker.task.again", task_id=task_id, status=result.status.value)
        else:
            result = await self._execute(raw, task_id, workflow_id)
            self._results[task_id] = result
        self._updating.add(task_id)
        try:
            accepted = await self._update(task_type, workflow_id, result)
        finally:
            self._updating.discard(task_id)
        if result.status is TaskStatus.IN_PROGRESS and accepted:
            self._results.move_to_end(task_id)
            while len(self._results) > REMEMBERED:
                self._results.popitem(last=False)
        else:
            self._results.pop(task_id, None)
        if accepted:
            counts.observe_latency(time.monotonic() - polled_at)

    async def _execute(self, raw: Mapping[str, Any], task_id: str, workflow_id: str) -> TaskResult:
        inputs = raw.get("inputData")
        inputs = dict(inputs) if isinstance(inputs, Mapping) else {}
        sink = inputs.get("sink")
        if not isinstance(sink, str) or not sink:
            reason = (
                "the task's inputData has no 'sink' (a string such as 'sqs:my-queue'); "
                "nothing was published"
            )
            log.warning("worker.task.no_sink", task_id=task_id, workflow_id=workflow_id)
            return TaskResult(task_id, TaskStatus.FAILED, inputs, reason)
        version = raw.get("workflowVersion")
        task = EventTask(
            sink=sink,
            input_parameters=inputs,
            workflow_instance_id=workflow_id,
            workflow_type=_text(raw.get("workflowType")),
            workflow_version=version if isinstance(version, int) else None,
            correlation_id=_text(raw.get("correlationId")),
            task_id=task_id,
            async_complete=_flag(inputs.get("asyncComplete")),
        )
        return await execute_event_task(task, self.queues)

    async def _update(self, task_type: str, workflow_id: str, result: TaskResult) -> bool:
        """Send the result until Conductor accepts it; ``False`` when it refused it for good
        or the stop deadline passed (the task then comes back after its response timeout)."""
        body = {
            **result.as_dict(),
            "workflowInstanceId": workflow_id,
            "workerId": self.options.worker_id,
            "callbackAfterSeconds": int(self.options.in_progress_callback)
            if result.status is TaskStatus.IN_PROGRESS
            else 0,
        }
        backoff: Backoff | None = None  # made on the first failure: most updates need none
        while True:
            try:
                await self.client.update_task(body)
            except ConductorError as exc:
                if not exc.transient:
                    self.metrics.update_failures.labels(task_type, "rejected").inc()
                    log.error(
                        "worker.update.rejected",
                        task_id=result.task_id,
                        error=exc.message,
                        then="not retried; Conductor times the task out and retries it",
                    )
                    return False
                if backoff is None:
                    backoff = Backoff(self.options.initial_backoff, self.options.max_backoff)
                delay = backoff.next_delay()
                if self._stop.is_set() and time.monotonic() + delay > self._deadline():
                    self.metrics.update_failures.labels(task_type, "abandoned").inc()
                    log.warning(
                        "worker.update.abandoned",
                        task_id=result.task_id,
                        error=exc.message,
                        then="Conductor times the task out and retries it; its message was "
                        "published with the task id as message id",
                    )
                    return False
                self.metrics.update_retries.labels(task_type).inc()
                log.warning(
                    "worker.update.retrying",
                    task_id=result.task_id,
                    error=exc.message,
                    retry_in=round(delay, 3),
                )
                await asyncio.sleep(delay)
                continue
            self._counts[task_type].updated(result.status.value)
            return True


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _flag(value: object) -> bool:
    """``asyncComplete`` as a workflow writes it: ``true`` or ``"true"``."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")
