"""The README's Python example, run as a script with the properties file the README shows,
prints the task result as JSON and nothing else: the library logs nothing on standard output
and nothing below WARNING while the application has not configured logging."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def fenced(section: str, language: str) -> str:
    """The first ``language`` block of the README section whose heading is ``section``."""
    text = README.read_text().split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return text.split(f"```{language}\n", 1)[1].split("```", 1)[0]


def test_the_short_example_prints_only_the_task_result(tmp_path: Path) -> None:
    (tmp_path / "app.properties").write_text(fenced("A short example", "properties"))
    (tmp_path / "example.py").write_text(fenced("A short example", "python"))
    done = subprocess.run(
        [sys.executable, "example.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    result = json.loads(done.stdout)
    assert result["status"] == "COMPLETED"
    assert result["outputData"]["event_produced"] == "local:send_email_queue"
    assert result["outputData"]["to"] == "a@example.com"
    # The properties file was read: the queue went to the file it names.
    assert (tmp_path / "events.db").exists()
    assert not (tmp_path / "conductor-events.db").exists()
