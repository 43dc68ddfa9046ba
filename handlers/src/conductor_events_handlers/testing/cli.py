"""Running the installed ``conductor-events`` command as a user would, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def cli_env(
    extra: Mapping[str, str] | None = None, plugins: str | None = "local,handlers"
) -> dict[str, str]:
    """The environment for a CLI run, with no inherited configuration. Only the named plugins
    load (comma-separated entry-point names); ``None`` loads every installed plugin."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONDUCTOR_", "COVERAGE_"))}
    if plugins is not None:
        env["CONDUCTOR_EVENTS_PLUGINS"] = plugins
    env.update(extra or {})
    return env


def run_cli(
    *args: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    plugins: str | None = "local,handlers",
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m conductor_events ARGS`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "conductor_events", *args],
        cwd=cwd,
        env=cli_env(env, plugins),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
