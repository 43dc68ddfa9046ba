"""The command group, its global options, and the state commands share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import click

if TYPE_CHECKING:
    from conductor_events.config.model import Configuration
    from conductor_events.event_queues import EventQueues
    from conductor_events.plugins import PluginHost

PLUGIN_HOST = "conductor_events.plugins"
"""Where the root context keeps the plugin host that added the plugins' commands, so the
command's :class:`App` uses the same one instead of loading every plugin again."""
PLUGIN_COMMANDS = "conductor_events.plugin_commands"
"""Where the root context keeps the commands plugins added, for this invocation only."""


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
        from conductor_events.event_queues import EventQueues

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


class MissingCommand(click.ClickException):
    """A command a known plugin package provides, which is not installed or not loaded: a usage
    error (exit 2) on one line, with what to do."""

    exit_code = 2


class CommandGroup(click.Group):
    """The command group: the core's commands, then the ones plugins add.

    A name the core does not define loads the plugins once per invocation and asks each
    (``register_commands``) to add its commands, as the handlers package adds ``serve``,
    ``handlers``, ``executions`` and ``worker``; the core's own commands never load them. The
    plugins' commands are kept on the invocation's context, not on this group, so each run
    honours the plugin switches of its own environment. A command known to come from a
    package that is not installed (or not loaded) fails with one line saying what to do.
    """

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        root = ctx.find_root()
        found: dict[str, click.Command] | None = root.meta.get(PLUGIN_COMMANDS)
        if found is None:
            from conductor_events.logging import configure_logging
            from conductor_events.plugins import PluginHost

            params = root.params
            debug = bool(params.get("debug"))
            configure_logging(
                "debug" if debug else str(params.get("log_level") or "warning"),
                str(params.get("log_format") or "auto"),
            )
            host = PluginHost()
            scratch = click.Group(self.name, commands=dict(self.commands))
            host.add_commands(scratch)
            found = {n: c for n, c in scratch.commands.items() if n not in self.commands}
            root.meta[PLUGIN_COMMANDS] = found
            root.meta[PLUGIN_HOST] = host
        return found

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        command = self._plugin_commands(ctx).get(cmd_name)
        if command is None:
            from conductor_events.install_hints import missing_command

            host = ctx.find_root().meta.get(PLUGIN_HOST)
            why = missing_command(cmd_name, host)
            if why is not None:
                raise MissingCommand(why)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugin_commands(ctx)})


@click.group(
    cls=CommandGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
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
    """Conductor's eventing layer: publish EVENT tasks, consume event queues, inspect plugins
    and configuration; plugins add commands (conductor-events-handlers: serve, handlers,
    executions, worker)."""
    from conductor_events.logging import configure_logging

    configure_logging("debug" if debug else log_level, log_format)
    files = list(config_files)
    if not files:
        from conductor_events.config.loader import config_files_from_env

        files = config_files_from_env()
    app = App(
        config_files=files,
        strict_plugins=strict_plugins,
        debug=debug,
        config_from_env=not config_files,
    )
    host = ctx.meta.get(PLUGIN_HOST)
    if host is not None and not strict_plugins:
        app._plugins = host  # loaded by CommandGroup for a plugin's command: reuse it
    ctx.obj = app


def _register_commands() -> None:
    from conductor_events.cli import config_cmd, listen_cmd, plugins_cmd, publish_cmd

    cli.add_command(plugins_cmd.plugins)
    cli.add_command(config_cmd.config)
    cli.add_command(publish_cmd.publish)
    cli.add_command(listen_cmd.listen)


_register_commands()
