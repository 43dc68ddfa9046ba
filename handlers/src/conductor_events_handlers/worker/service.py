"""Wiring the worker together: settings, Conductor client, probe, HTTP endpoint, the loop.

:func:`run_worker` is what ``conductor-events worker`` runs. It reuses ``serve``'s parts as
they are: the ``/health``, ``/ready`` and ``/metrics`` endpoint, the signal flags and the
start-up probe of the Conductor server.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conductor_events.event_queues import EventQueues
    from conductor_events_handlers.serve.signals import ServiceSignals
    from conductor_events_handlers.worker.runner import WorkerOptions
    from conductor_events_handlers.worker.settings import EventWorkerSettings


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """The command-line choices.

    Attributes:
        task_types: task types to poll; empty means ``conductor.event-worker.task-types``.
        http: ``(host, port)`` of the HTTP endpoint, or ``None`` for none.
        shutdown_timeout: seconds tasks in hand get to finish on a stop.
        require_conductor: exit at start when the Conductor server cannot be used.
    """

    task_types: Sequence[str] = field(default_factory=tuple)
    http: tuple[str, int] | None = None
    shutdown_timeout: float = 30.0
    require_conductor: bool = False


def worker_options(settings: EventWorkerSettings, config: WorkerConfig) -> WorkerOptions:
    """The loop's options: the command's choices over ``conductor.event-worker.*``."""
    from conductor_events_handlers.worker.runner import WorkerOptions

    return WorkerOptions(
        task_types=tuple(dict.fromkeys(config.task_types or settings.task_types)),
        worker_id=settings.effective_worker_id(),
        domain=settings.domain or None,
        poll_count=settings.poll_count,
        poll_timeout=settings.poll_timeout.total_seconds(),
        concurrency=settings.concurrency,
        initial_backoff=settings.initial_backoff.total_seconds(),
        max_backoff=settings.max_backoff.total_seconds(),
        in_progress_callback=settings.in_progress_callback.total_seconds(),
        shutdown_timeout=config.shutdown_timeout,
    )


async def run_worker(queues: EventQueues, config: WorkerConfig, signals: ServiceSignals) -> None:
    """Run until ``signals`` asks for a stop; the client and endpoint are closed on the way
    out."""
    from prometheus_client import disable_created_metrics

    from conductor_events_handlers.client import ConductorClient
    from conductor_events_handlers.serve.http import HttpEndpoint, Probe
    from conductor_events_handlers.serve.service import probe_conductor
    from conductor_events_handlers.settings import ServerSettings
    from conductor_events_handlers.worker.metrics import WorkerMetrics
    from conductor_events_handlers.worker.runner import TaskWorker
    from conductor_events_handlers.worker.settings import EventWorkerSettings

    disable_created_metrics()  # type: ignore[no-untyped-call]  # this process owns its metrics
    options = worker_options(queues.config.section(EventWorkerSettings), config)
    server = queues.config.section(ServerSettings)
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(ConductorClient(server))
        await probe_conductor(client, config.require_conductor or server.require_at_start)
        metrics = WorkerMetrics()
        worker = TaskWorker(
            queues,
            client,
            options,
            metrics,
            signals.stop,
            lambda: signals.stop_requested_at,
        )
        if config.http is not None:
            endpoint = HttpEndpoint(Probe(worker.status, metrics.render), *config.http)
            await endpoint.start()
            stack.push_async_callback(endpoint.stop)
        await worker.run()
