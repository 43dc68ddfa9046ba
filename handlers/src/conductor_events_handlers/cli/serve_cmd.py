"""``conductor-events serve``: the event bridge service."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from conductor_events.cli.app import App, config_options, pass_app
from conductor_events_handlers.cli.service_options import run_until_stopped, service_options

if TYPE_CHECKING:
    from conductor_events_handlers.serve.signals import ServiceSignals


@click.command()
@click.option(
    "--handlers",
    "handler_paths",
    multiple=True,
    metavar="PATH",
    help="Handler file or directory of *.json files; repeat for several. "
    "Default: conductor.event-handlers.definitions.",
)
@service_options(
    shutdown_help="On SIGTERM or SIGINT, how long messages in hand may take to finish before "
    "they are returned to their queue.",
    require_conductor_help="Exit with status 2 when the Conductor server cannot be used at "
    "start-up (unreachable, credentials refused, wrong base path), instead of logging a warning "
    "and going on (conductor.server.require-at-start).",
)
@config_options
@pass_app
def serve(
    app: App,
    handler_paths: tuple[str, ...],
    http: tuple[str, int] | None,
    shutdown_timeout: float,
    require_conductor: bool,
) -> None:
    """Run the event handlers as a service: one listener per event of the active handlers,
    each action sent to the Conductor server (conductor.server.url).

    Handler files are reloaded when they change and on SIGHUP. SIGTERM or SIGINT stops
    receiving, lets messages in hand finish (--shutdown-timeout), returns the rest to their
    queue and exits 0; a second signal exits at once. Messages are acked only after their
    actions succeeded, so nothing is lost.

    At start, one request checks that Conductor answers and accepts the credentials; when it
    does not, a warning says why (or, with --require-conductor, the command exits 2)."""
    from conductor_events_handlers.serve.service import ServiceConfig, run_service

    config = ServiceConfig(handler_paths, http, shutdown_timeout, require_conductor)

    async def run(signals: ServiceSignals) -> None:
        async with app.event_queues() as queues:
            await run_service(queues, config, signals)

    run_until_stopped(run)
