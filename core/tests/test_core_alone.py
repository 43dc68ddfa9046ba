"""The core installed alone (``pip install conductor-events``, no handlers package, no backend
plugin), as ``make isolated-core`` runs it in a venv of its own: the core's commands work on
the built-in ``local`` queue, the handler-only dependencies are absent, and the commands the
handlers package adds say in one line what to install."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

import conductor_events

HANDLER_ONLY = ["conductor_events_handlers", "quickjs", "aiohttp", "prometheus_client", "jsonpath"]


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CONDUCTOR_", "COVERAGE_"))}
    return subprocess.run(
        [sys.executable, "-m", "conductor_events", *args],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("module", HANDLER_ONLY)
def test_no_handler_only_dependency_is_installed(module: str) -> None:
    assert importlib.util.find_spec(module) is None, f"{module} is installed with the core"


def test_the_version_is_the_package_s(tmp_path: Path) -> None:
    assert importlib.metadata.version("conductor-events") == conductor_events.__version__
    result = run("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert conductor_events.__version__ in result.stdout


def test_help_lists_the_core_s_commands_only(tmp_path: Path) -> None:
    result = run("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    commands = result.stdout.split("Commands:")[1].split()
    for name in ("config", "listen", "plugins", "publish"):
        assert name in commands
    for name in ("serve", "worker", "executions"):
        assert name not in commands


@pytest.mark.parametrize("command", ["serve", "handlers", "executions", "worker"])
def test_a_handlers_command_says_what_to_install(tmp_path: Path, command: str) -> None:
    result = run(command, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"error: command {command!r} is provided by conductor-events-handlers, which is not "
        "installed; install it: pip install 'conductor-events[handlers]'\n"
    )


def test_config_check_publish_and_listen_on_local(tmp_path: Path) -> None:
    config = tmp_path / "app.properties"
    config.write_text(
        f"conductor.event-queues.local.path={tmp_path / 'queue.db'}\n"
        "conductor.default-event-queue.type=local\n"
    )
    checked = run("-c", str(config), "config", "check", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    published = run(
        "-c", str(config), "publish", "local:orders", "--input", '{"id": 7}', cwd=tmp_path
    )
    assert published.returncode == 0, published.stderr
    listened = run(
        "-c", str(config), "listen", "local:orders", "--count", "1", "--timeout", "10",
        cwd=tmp_path,
    )  # fmt: skip
    assert listened.returncode == 0, listened.stderr
    assert '"id": 7' in listened.stdout or '"id":7' in listened.stdout


def test_a_handlers_section_is_ignored_like_a_conductor_server_key(tmp_path: Path) -> None:
    """Without the handlers package nothing declares conductor.event-handlers: its keys are
    left alone, as a Conductor server's own keys are, so one file serves both set-ups."""
    config = tmp_path / "app.properties"
    config.write_text(
        f"conductor.event-queues.local.path={tmp_path / 'queue.db'}\n"
        "conductor.event-handlers.retry.max-attempts=2\n"
    )
    checked = run("-c", str(config), "config", "check", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
