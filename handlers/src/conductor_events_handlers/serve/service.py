"""Wiring the service together: configuration, handlers, Conductor client, listeners, HTTP.

:func:`run_service` is what ``conductor-events serve`` runs. It refuses to start with a
configuration or handler file that has problems (exit 2), probes the Conductor server once
(a warning when it cannot be used, or exit 2 with ``--require-conductor``), and otherwise runs
until SIGTERM or SIGINT, then returns after a graceful stop.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from conductor_events.errors import ConductorEventsError

if TYPE_CHECKING:
    from conductor_events.event_queues import EventQueues
    from conductor_events_handlers.client import ConductorClient
    from conductor_events_handlers.serve.signals import ServiceSignals

log = structlog.get_logger(__name__)


class NoHandlersError(ConductorEventsError):
    """The service was given no handler files."""

    exit_code = 2


class ConductorUnavailableError(ConductorEventsError):
    """The Conductor server could not be used at start-up, and it is required."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """The service's command-line choices.

    Attributes:
        handler_paths: handler files or directories; empty means
            ``conductor.event-handlers.definitions``.
        http: ``(host, port)`` of the HTTP endpoint, or ``None`` for none.
        shutdown_timeout: seconds messages in hand get to finish on a stop.
        require_conductor: exit at start when the Conductor server cannot be used (else
            ``conductor.server.require-at-start`` decides).
    """

    handler_paths: Sequence[str] = field(default_factory=tuple)
    http: tuple[str, int] | None = None
    shutdown_timeout: float = 30.0
    require_conductor: bool = False


async def probe_conductor(client: ConductorClient, required: bool) -> None:
    """One request to Conductor before any message is taken, so a wrong URL, proxy or
    credential shows at start rather than as the first message's failure. Not required (the
    default), a problem is a warning and the service goes on: messages wait on their queue
    and are retried until Conductor answers.

    Raises:
        ConductorUnavailableError: ``required``, and Conductor cannot be used.
    """
    problem = await client.probe()
    if problem is None:
        log.info("serve.conductor.reachable", url=client.base_url)
        return
    if required:
        raise ConductorUnavailableError(
            f"{problem}; not starting, as --require-conductor or "
            "conductor.server.require-at-start asks"
        )
    log.warning(
        "serve.conductor.unreachable",
        url=client.base_url,
        problem=problem,
        then="starting anyway; actions fail and their messages are retried until it answers",
    )


async def run_service(queues: EventQueues, config: ServiceConfig, signals: ServiceSignals) -> None:
    """Run until ``signals`` asks for a stop; every client is closed on the way out."""
    from prometheus_client import disable_created_metrics

    from conductor_events_handlers.client import ConductorClient
    from conductor_events_handlers.engines import EnginePool
    from conductor_events_handlers.loader import event_check
    from conductor_events_handlers.processor import HandlerProcessor
    from conductor_events_handlers.scripting import ScriptEngine
    from conductor_events_handlers.serve.http import HttpEndpoint, Probe
    from conductor_events_handlers.serve.metrics import ServiceMetrics
    from conductor_events_handlers.serve.reload import HandlerSource
    from conductor_events_handlers.serve.supervisor import ServeOptions, Supervisor
    from conductor_events_handlers.settings import EventHandlerSettings, ServerSettings

    disable_created_metrics()  # type: ignore[no-untyped-call]  # this process owns its metrics
    settings = queues.config.section(EventHandlerSettings)
    paths = list(config.handler_paths) or list(settings.definitions)
    if not paths:
        raise NoHandlersError(
            "no handler files: give --handlers PATH or set conductor.event-handlers.definitions"
        )
    options = ServeOptions(
        concurrency=settings.concurrency,
        shutdown_timeout=config.shutdown_timeout,
        reload_interval=settings.reload_interval.total_seconds(),
        initial_backoff=settings.reconnect.initial_backoff.total_seconds(),
        max_backoff=settings.reconnect.max_backoff.total_seconds(),
    )
    timeout = settings.script.timeout.total_seconds()
    # One engine compiles handlers as they (re)load, off the pool, so a reload never waits
    # behind a runaway condition; the pool evaluates conditions.
    compiler = ScriptEngine(timeout, settings.script.memory_limit)
    engines = EnginePool(timeout, settings.script.memory_limit, settings.script.engines or None)
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(compiler.close)
        stack.callback(engines.close)
        source = HandlerSource(
            paths,
            compiler,
            allowed_env=settings.allowed_env,
            check_event=event_check(queues.config, queues.plugins),
        )
        loaded = source.load()
        loaded.raise_for_problems()
        server = queues.config.section(ServerSettings)
        client = await stack.enter_async_context(ConductorClient(server))
        await probe_conductor(client, config.require_conductor or server.require_at_start)
        base = HandlerProcessor.create(loaded.handlers, engines, client, settings)
        stack.callback(base.close)
        metrics = ServiceMetrics()
        supervisor = Supervisor(queues, source, base, metrics, signals, options)
        if config.http is not None:
            endpoint = HttpEndpoint(Probe(supervisor.status, metrics.render), *config.http)
            await endpoint.start()
            stack.push_async_callback(endpoint.stop)
        supervisor.start(loaded.handlers)
        await supervisor.run()
