"""What ``serve`` and ``worker`` share as commands: both are long-running services with an
HTTP endpoint for probes and metrics, a grace period on shutdown, and signal handling that
turns the first SIGTERM or SIGINT into a graceful stop and the second into an exit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, TypeVar

import click

if TYPE_CHECKING:
    from conductor_events_handlers.serve.signals import ServiceSignals

F = TypeVar("F", bound=Callable[..., object])


def _parse_http_address(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[str, int] | None:
    if value is None:
        return None
    from conductor_events_handlers.serve.http import parse_address

    try:
        return parse_address(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def service_options(*, shutdown_help: str, require_conductor_help: str) -> Callable[[F], F]:
    """The ``--http``, ``--shutdown-timeout`` and ``--require-conductor`` options, with the
    help texts that say what each command finishes on shutdown and checks at start."""

    def decorate(command: F) -> F:
        command = click.option("--require-conductor", is_flag=True, help=require_conductor_help)(
            command
        )
        command = click.option(
            "--shutdown-timeout",
            type=click.FloatRange(min=0),
            default=30.0,
            show_default=True,
            metavar="SECONDS",
            help=shutdown_help,
        )(command)
        return click.option(
            "--http",
            metavar="[HOST:]PORT",
            callback=_parse_http_address,
            help="Serve /health, /ready and /metrics here; the host defaults to 127.0.0.1.",
        )(command)

    return decorate


def run_until_stopped(service: Callable[[ServiceSignals], Coroutine[object, object, None]]) -> None:
    """Run ``service`` with the process's signal handlers installed, restoring them after."""
    from conductor_events_handlers.serve.signals import ServiceSignals

    signals = ServiceSignals()
    signals.install()
    try:
        asyncio.run(service(signals))
    finally:
        signals.restore()
