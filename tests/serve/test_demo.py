"""The main-job walkthrough (``python examples/seed/walkthrough.py``) runs as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.cli import cli_env

ROOT = Path(__file__).resolve().parents[2]


def test_serve_demo_delivers_the_seed_handlers_action() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "seed" / "walkthrough.py")],
        cwd=ROOT,
        env=cli_env(plugins="local,handlers"),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "task_1_ref is COMPLETED" in result.stdout
    assert '"received": 100' in result.stdout
    assert "serve stopped on SIGTERM with exit status 0" in result.stdout
