"""Registers the handlers package with conductor-events: its configuration sections and its
commands. Importing this imports no handler engine, HTTP client or JavaScript engine: the
commands import them when they run."""

from __future__ import annotations

from collections.abc import Callable

import click

from conductor_events import hookimpl
from conductor_events.config.settings import SectionSettings


@hookimpl
def register_config_sections(register: Callable[[type[SectionSettings]], None]) -> None:
    from conductor_events_handlers.settings import EventHandlerSettings, ServerSettings
    from conductor_events_handlers.worker.settings import EventWorkerSettings

    register(ServerSettings)
    register(EventHandlerSettings)
    register(EventWorkerSettings)


@hookimpl
def register_commands(cli: click.Group) -> None:
    from conductor_events_handlers.cli import handlers_cmd, serve_cmd, worker_cmd

    cli.add_command(handlers_cmd.handlers)
    cli.add_command(handlers_cmd.executions)
    cli.add_command(serve_cmd.serve)
    cli.add_command(worker_cmd.worker)
