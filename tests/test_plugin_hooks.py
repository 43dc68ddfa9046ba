"""The two hooks through which a package outside the core adds configuration sections and
commands (the handlers package uses both): what they add, and what a plugin may not do."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import click
import pytest
from click.testing import CliRunner

import conductor_events.local.plugin
from conductor_events import hookimpl
from conductor_events.cli import cli
from conductor_events.config import load_configuration
from conductor_events.config.settings import SectionSettings
from conductor_events.errors import PluginError
from conductor_events.plugins import FAILED, LOADED, PluginHost
from tests.support.cli import run_cli


class AuditSettings(SectionSettings):
    section: ClassVar[str] = "conductor.audit"
    retention_days: int = 30


class AuditPlugin:
    @hookimpl
    def register_config_sections(self, register: Callable[[type[SectionSettings]], None]) -> None:
        register(AuditSettings)


def _host(*plugins: tuple[object, str]) -> PluginHost:
    host = PluginHost(entry_points=[], environ={})
    host.add_plugin(conductor_events.local.plugin, "local", distribution="conductor-events")
    for plugin, name in plugins:
        host.add_plugin(plugin, name)
    return host


def test_hook_register_config_sections(tmp_path: Path) -> None:
    """A declared section is bound and validated like the core's, and its problems name the
    plugin; without the plugin, its keys are left alone like a Conductor server's."""
    file = tmp_path / "app.properties"
    file.write_text("conductor.audit.retention-days=abc\nconductor.audit.retension=1\n")
    loaded = load_configuration([file], _host((AuditPlugin(), "audit")), {})
    problems = [str(p) for p in loaded.problems]
    assert problems == [
        f"{file}:1: conductor.audit.retention-days: invalid value 'abc': Input should be a valid "
        "integer, unable to parse string as an integer (plugin audit)",
        f"{file}:2: conductor.audit.retension: unknown property of section conductor.audit; "
        "did you mean 'conductor.audit.retention-days'? (plugin audit)",
    ]
    file.write_text("conductor.audit.retention-days=7\n")
    config = load_configuration([file], _host((AuditPlugin(), "audit")), {})
    assert config.section(AuditSettings).retention_days == 7
    assert load_configuration([file], _host(), {}).problems == []


@pytest.mark.parametrize("section", ["conductor.event-queues", "audit", "conductor.a.b"])
def test_a_section_a_plugin_may_not_declare_fails_it(section: str) -> None:
    class Bad(SectionSettings):
        pass

    Bad.section = section

    class BadPlugin:
        @hookimpl
        def register_config_sections(
            self, register: Callable[[type[SectionSettings]], None]
        ) -> None:
            register(Bad)

    with pytest.raises(PluginError, match="is not one it may declare"):
        _host((BadPlugin(), "bad"))


def test_a_section_two_plugins_declare_is_refused_naming_both() -> None:
    with pytest.raises(PluginError, match=r"conductor\.audit is declared by two plugins"):
        _host((AuditPlugin(), "audit"), (AuditPlugin(), "audit2"))


@click.command()
def hello() -> None:
    """Say hello."""
    click.echo("hello from a plugin")


class CommandPlugin:
    @hookimpl
    def register_commands(self, cli: click.Group) -> None:
        cli.add_command(hello)


def test_hook_register_commands() -> None:
    group = click.Group("conductor-events", commands={"publish": click.Command("publish")})
    host = _host((CommandPlugin(), "hello"))
    host.add_commands(group)
    assert group.commands["hello"] is hello
    assert {r.name: r.status for r in host.records()}["hello"] == LOADED


def test_a_plugin_replacing_a_core_command_fails_and_the_core_s_stays() -> None:
    core = click.Command("publish")
    group = click.Group("conductor-events", commands={"publish": core})

    class Hijack:
        @hookimpl
        def register_commands(self, cli: click.Group) -> None:
            cli.add_command(click.Command("publish"))
            cli.add_command(hello)

    host = _host((Hijack(), "hijack"))
    host.add_commands(group)
    assert group.commands == {"publish": core}
    record = {r.name: r for r in host.records()}["hijack"]
    assert record.status == FAILED
    assert record.error == "register_commands replaced command(s) ['publish']"


def test_the_handlers_commands_come_from_the_installed_package(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"], env={"CONDUCTOR_EVENTS_PLUGINS": ""})
    assert result.exit_code == 2
    assert "which is not in CONDUCTOR_EVENTS_PLUGINS" in result.output
    listed = run_cli("--help", cwd=tmp_path, plugins="local,handlers")
    assert listed.returncode == 0
    commands = listed.stdout.split("Commands:")[1].split()
    assert {"serve", "handlers", "executions", "worker"} <= set(commands)
    alone = run_cli("--help", cwd=tmp_path, plugins="local").stdout
    assert "serve" not in alone.split("Commands:")[1].split()


@pytest.mark.parametrize("command", ["serve", "worker", "handlers", "executions"])
def test_a_handlers_command_left_out_of_the_allow_list_says_how_to_use_it(
    tmp_path: Path, command: str
) -> None:
    result = run_cli(command, cwd=tmp_path, plugins="local")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: command {command!r} is provided by plugin 'handlers' "
        "(conductor-events-handlers 0.1.0), which is not in CONDUCTOR_EVENTS_PLUGINS; add "
        "'handlers' to it to use it"
    ]
