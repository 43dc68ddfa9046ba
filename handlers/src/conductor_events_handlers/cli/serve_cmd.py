"""``conductor-events serve``: the event bridge service."""

from __future__ import annotations

import asyncio

import click

from conductor_events.cli.app import App, config_options, pass_app


def _address(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[str, int] | None:
    if value is None:
        return None
    from conductor_events_handlers.serve.http import parse_address

    try:
        return parse_address(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.option(
    "--handlers",
    "handler_paths",
    multiple=True,
    metavar="PATH",
    help="Handler file or directory of *.json files; repeat for several. "
    "Default: conductor.event-handlers.definitions.",
)
@click.option(
    "--http",
    metavar="[HOST:]PORT",
    callback=_address,
    help="Serve /health, /ready and /metrics here; the host defaults to 127.0.0.1.",
)
@click.option(
    "--shutdown-timeout",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="On SIGTERM or SIGINT, how long messages in hand may take to finish before they "
    "are returned to their queue.",
)
@click.option(
    "--require-conductor",
    is_flag=True,
    help="Exit with status 2 when the Conductor server cannot be used at start-up "
    "(unreachable, credentials refused, wrong base path), instead of logging a warning and "
    "going on (conductor.server.require-at-start).",
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
    from conductor_events_handlers.serve.signals import ServiceSignals

    config = ServiceConfig(handler_paths, http, shutdown_timeout, require_conductor)
    signals = ServiceSignals()

    async def run() -> None:
        async with app.event_queues() as queues:
            await run_service(queues, config, signals)

    signals.install()
    try:
        asyncio.run(run())
    finally:
        signals.restore()
