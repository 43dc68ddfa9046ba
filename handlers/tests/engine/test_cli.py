"""``conductor-events handlers check`` and ``conductor-events executions``, and a CLI that
stays fast: the engine and HTTP client load only inside the commands that need them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result

from conductor_events.cli import cli

SEED = Path(__file__).resolve().parents[3] / "examples" / "seed" / "handler.json"
ENV = {"CONDUCTOR_EVENTS_PLUGINS": "local,handlers"}


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=ENV)


def test_check_accepts_a_valid_file(properties: Path) -> None:
    result = invoke("-c", str(properties), "handlers", "check", str(SEED))
    assert result.exit_code == 0, result.output
    assert result.output == "1 handler in 1 file: valid\n"


def test_check_without_paths_uses_the_configured_definitions(tmp_path: Path) -> None:
    config = tmp_path / "app.properties"
    config.write_text(f"conductor.event-handlers.definitions={SEED.parent}\n")
    result = invoke("-c", str(config), "handlers", "check")
    assert result.exit_code == 0, result.output
    assert result.output == "1 handler in 1 file: valid\n"
    nothing = tmp_path / "empty.properties"
    nothing.write_text("")
    empty = invoke("-c", str(nothing), "handlers", "check")
    assert empty.exit_code == 2
    assert "set conductor.event-handlers.definitions" in empty.output


def test_check_prints_every_problem_and_exits_2(tmp_path: Path, properties: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            [
                {
                    "name": "a",
                    "event": "kafka:orders",
                    "evaluatorType": "python",
                    "actions": [{"action": "notify"}],
                },
                {"name": "b", "event": "local:q", "condition": "$.x ==", "actions": []},
            ],
            indent=2,
        )
    )
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    result = invoke("-c", str(properties), "handlers", "check", str(bad), str(broken))
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert [line.split(": ", 1)[1].split(":")[0] for line in lines] == [
        "[0].event",
        "[0].evaluatorType",
        "[0].actions[0].action",
        "[1].condition",  # compiled even though the handler has another problem
        "[1].actions",
        "not JSON",
    ]
    assert lines[0].startswith(f"{bad}:4:14: ")
    assert "this event cannot be consumed here: sink 'kafka:orders'" in lines[0]
    assert lines[-1] == f"{broken}:1:2: not JSON: Expecting property name enclosed in double quotes"
    assert "6 problems found" in result.stderr


def seed_as_conductor_documents_it(tmp_path: Path) -> Path:
    """The seed's handler with ``input`` beside the complete_task's other fields."""
    text = SEED.read_text().replace(
        '"taskRefName": "task_1_ref",', '"taskRefName": "task_1_ref",\n        "input": {},'
    )
    assert '"input"' in text
    path = tmp_path / "handler.json"
    path.write_text(text)
    return path


def test_check_warns_about_a_field_conductor_ignores_and_passes(
    tmp_path: Path, properties: Path
) -> None:
    path = seed_as_conductor_documents_it(tmp_path)
    result = invoke("-c", str(properties), "handlers", "check", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{path}:11:18: actions[0].complete_task.input: warning: unknown field 'input' is "
        "ignored, as Conductor ignores it",
        "1 handler in 1 file: valid, 1 warning",
    ]
    strict = invoke("handlers", "check", "--strict", str(path), "-c", str(properties))
    assert strict.exit_code == 2
    assert strict.stdout.splitlines()[0].endswith("warning: unknown field 'input' is "
                                                  "ignored, as Conductor ignores it")  # fmt: skip
    assert strict.stderr == "1 warning found (--strict)\n"


def test_check_counts_problems_and_warnings(tmp_path: Path, properties: Path) -> None:
    path = seed_as_conductor_documents_it(tmp_path)
    path.write_text(path.read_text().replace('"active"', '"activ"'))
    result = invoke("handlers", "check", str(path), "-c", str(properties))
    assert result.exit_code == 2
    assert [line.split(": ", 2)[1] for line in result.stdout.splitlines()] == [
        "actions[0].complete_task.input",
        "activ",
    ]
    assert result.stderr == "1 problem and 1 warning found\n"


def test_check_reports_configuration_errors_too(tmp_path: Path) -> None:
    config = tmp_path / "bad.properties"
    config.write_text("conductor.server.url=ftp://x\nconductor.server.auth.key=k\n")
    result = invoke("-c", str(config), "handlers", "check", str(SEED))
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [
        f"{config}:1: conductor.server.url: invalid value 'ftp://x': url must start with http:// "
        "or https:// and a host (plugin conductor-events-handlers 0.1.0)",
        f"{config}:2: conductor.server.auth.key: auth.key and auth.secret must be set together "
        "(plugin conductor-events-handlers 0.1.0)",
    ]


def test_executions_with_no_records(tmp_path: Path, properties: Path) -> None:
    result = invoke("-c", str(properties), "executions")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no execution records" in result.stderr


def test_the_cli_does_not_import_the_engine_or_http_client() -> None:
    code = (
        "import sys; from conductor_events.cli import cli; "
        "print(sorted(m for m in ('quickjs', 'httpx', 'conductor_events_handlers.scripting') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
