"""The command group, its global options, and the state commands share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import click

if TYPE_CHECKING:
    from conductor_events.config.model import Configuration
    from conductor_events.plugins import PluginHost
    from conductor_events.runtime import EventQueues


@dataclass
class App:
    """What the global options set up; plugins and configuration load on first use."""

    config_files: list[str]
    strict_plugins: bool
    debug: bool
    config_from_env: bool = False
    """``config_files`` came from CONDUCTOR_EVENTS_CONFIG, not from ``-c``."""
    _plugins: PluginHost | None = field(default=None, repr=False)

    @property
    def plugins(self) -> PluginHost:
        if self._plugins is None:
            from conductor_events.plugins import PluginHost

            self._plugins = PluginHost(strict=True if self.strict_plugins else None)
        return self._plugins

    def use_config_files(self, files: tuple[str, ...] | list[str]) -> None:
        """Add a command's own ``-c`` files after the global ones; they replace the
        CONDUCTOR_EVENTS_CONFIG default, as the global ``-c`` does."""
        base = [] if self.config_from_env else self.config_files
        self.config_files = [*base, *files]
        self.config_from_env = False

    def configuration(self) -> Configuration:
        """The configuration with every problem collected (for ``config`` commands)."""
        from conductor_events.config.loader import load_configuration

        return load_configuration(self.config_files, self.plugins)

    def event_queues(self) -> EventQueues:
        """Queues for a command that does work: refuses a configuration with errors."""
        from conductor_events.runtime import EventQueues

        return EventQueues.from_files(self.config_files, plugins=self.plugins)


pass_app = click.make_pass_decorator(App)

_Command = TypeVar("_Command", bound=Callable[..., object])


def _app(ctx: click.Context) -> App:
    app = ctx.find_object(App)
    if app is None:  # a command run without the group that sets App up
        raise click.UsageError("run this command through conductor-events", ctx=ctx)
    return app


def _add_config_files(ctx: click.Context, param: click.Parameter, files: tuple[str, ...]) -> None:
    if files:
        _app(ctx).use_config_files(files)


def _set_strict_plugins(ctx: click.Context, param: click.Parameter, strict: bool) -> None:
    if strict:
        _app(ctx).strict_plugins = True


def config_options(command: _Command) -> _Command:
    """The group's configuration options, accepted after a command too.

    ``conductor-events publish -c app.properties local:q`` then means what
    ``conductor-events -c app.properties publish local:q`` means: a command's ``-c`` files
    come after the group's and replace the CONDUCTOR_EVENTS_CONFIG default, as the group's do.
    The options only record what they were given in :class:`App`; configuration and plugins
    load later, on first use, so the order of options does not matter.
    """
    command = click.option(
        "--strict-plugins",
        is_flag=True,
        expose_value=False,
        callback=_set_strict_plugins,
        help="As the global --strict-plugins: fail when any plugin fails to load.",
    )(command)
    return click.option(
        "-c",
        "--config",
        multiple=True,
        metavar="FILE",
        expose_value=False,
        callback=_add_config_files,
        help="Properties file, as the global -c; these come after the global ones.",
    )(command)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "-c",
    "--config",
    "config_files",
    multiple=True,
    metavar="FILE",
    help="Properties file; repeat for several, later ones override earlier ones. "
    "Default: the files in CONDUCTOR_EVENTS_CONFIG (separated by ':').",
)
@click.option(
    "--strict-plugins",
    is_flag=True,
    help="Fail when any plugin fails to load (also CONDUCTOR_EVENTS_STRICT_PLUGINS=1).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="warning",
    show_default=True,
    help="Least severe log level shown.",
)
@click.option(
    "--log-format",
    type=click.Choice(["auto", "console", "json"]),
    default="auto",
    show_default=True,
    help="Log lines for people (console) or machines (json); auto picks console on a terminal.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="conductor-events", prog_name="conductor-events")
@click.pass_context
def cli(
    ctx: click.Context,
    config_files: tuple[str, ...],
    strict_plugins: bool,
    log_level: str,
    log_format: str,
    debug: bool,
) -> None:
    """Conductor's eventing layer: publish EVENT tasks, consume event queues, check and serve
    event handlers, list their executions, inspect plugins and configuration."""
    from conductor_events.logging import configure_logging

    configure_logging("debug" if debug else log_level, log_format)
    files = list(config_files)
    if not files:
        from conductor_events.config.loader import config_files_from_env

        files = config_files_from_env()
    ctx.obj = App(
        config_files=files,
        strict_plugins=strict_plugins,
        debug=debug,
        config_from_env=not config_files,
    )


def _register_commands() -> None:
    from conductor_events.cli import (
        config_cmd,
        handlers_cmd,
        listen_cmd,
        plugins_cmd,
        publish_cmd,
        serve_cmd,
        worker_cmd,
    )

    cli.add_command(plugins_cmd.plugins)
    cli.add_command(config_cmd.config)
    cli.add_command(publish_cmd.publish)
    cli.add_command(listen_cmd.listen)
    cli.add_command(handlers_cmd.handlers)
    cli.add_command(handlers_cmd.executions)
    cli.add_command(serve_cmd.serve)
    cli.add_command(worker_cmd.worker)


_register_commands()
