"""The ``conductor-events`` command, run as a user runs it: a real process, real files."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import cli_env, run_cli


@pytest.fixture
def queue_env(tmp_path: Path) -> dict[str, str]:
    return {"CONDUCTOR_EVENTQUEUES_LOCAL_PATH": str(tmp_path / "queue.db")}


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("plugins", "config", "publish", "listen"):
        assert f"  {command}" in result.stdout


def test_plugins_json_lists_an_installed_plugin_package(tmp_path: Path) -> None:
    result = run_cli("plugins", "--json", cwd=tmp_path, plugins="local,memory")
    assert result.returncode == 0, result.stderr
    records = {r["name"]: r for r in json.loads(result.stdout)}
    assert records["memory"]["distribution"] == "conductor-events-memory"
    assert records["memory"]["version"] == "0.3.1"
    assert records["memory"]["queue_types"] == ["memory"]
    assert records["memory"]["status"] == "disabled-by-config"
    assert records["local"]["status"] == "loaded"


def test_plugins_table_shows_blocked_plugins(tmp_path: Path) -> None:
    result = run_cli("plugins", cwd=tmp_path, plugins="local")
    assert result.returncode == 0
    memory_row = next(line for line in result.stdout.splitlines() if line.startswith("memory"))
    assert memory_row.split()[-1] == "blocked"
    assert "memory: not listed in CONDUCTOR_EVENTS_PLUGINS" in result.stderr


def test_config_check_typo_prints_file_line_key_and_suggestion(tmp_path: Path) -> None:
    config = tmp_path / "app.properties"
    config.write_text(
        "conductor.db.type=postgres\nconductor.event-queues.local.visibilty-timeout=30s\n"
    )
    result = run_cli("-c", str(config), "config", "check", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout.splitlines() == [
        f"{config}:2: conductor.event-queues.local.visibilty-timeout: unknown property of "
        "section conductor.event-queues.local; did you mean "
        "'conductor.event-queues.local.visibility-timeout'? (plugin conductor-events 0.1.0)"
    ]
    assert result.stderr.strip() == "1 problem found"


def test_config_check_valid_files_and_env_variable(tmp_path: Path) -> None:
    first = tmp_path / "a.properties"
    second = tmp_path / "b.properties"
    first.write_text("conductor.event-queues.local.max-deliveries=3\n")
    second.write_text("conductor.default-event-queue.type=local\n")
    env = {"CONDUCTOR_EVENTS_CONFIG": f"{first}:{second}"}
    result = run_cli("config", "check", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip() == f"configuration is valid ({first}, {second})"


def test_config_show_gives_every_key_value_and_source(tmp_path: Path) -> None:
    config = tmp_path / "app.properties"
    config.write_text("\nconductor.eventQueues.local.maxDeliveries=4\n")
    env = {"CONDUCTOR_EVENTQUEUES_LOCAL_VISIBILITYTIMEOUT": "90s"}
    result = run_cli("-c", str(config), "config", "show", "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    rows = {row["key"]: row for row in json.loads(result.stdout)}
    assert rows["conductor.event-queues.local.max-deliveries"] == {
        "key": "conductor.event-queues.local.max-deliveries",
        "value": "4",
        "source": f"{config}:2",
    }
    assert rows["conductor.event-queues.local.visibility-timeout"]["source"] == (
        "env CONDUCTOR_EVENTQUEUES_LOCAL_VISIBILITYTIMEOUT"
    )
    assert rows["conductor.event-queues.local.poll-interval"] == {
        "key": "conductor.event-queues.local.poll-interval",
        "value": "100ms",
        "source": "default",
    }
    assert rows["conductor.default-event-queue.type"]["value"] == ""
    text = run_cli("-c", str(config), "config", "show", cwd=tmp_path).stdout
    line = next(x for x in text.splitlines() if x.startswith("conductor.event-queues.local.max-"))
    assert line.split() == ["conductor.event-queues.local.max-deliveries", "=", "4", "#",
                            f"{config}:2"]  # fmt: skip


def test_missing_config_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run_cli("-c", "missing.properties", "config", "check", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "error: missing.properties: configuration file not found\n"
    debug = run_cli("--debug", "-c", "missing.properties", "config", "check", cwd=tmp_path)
    assert "Traceback" in debug.stderr


def test_config_errors_stop_publish_with_every_line(tmp_path: Path) -> None:
    config = tmp_path / "app.properties"
    config.write_text("conductor.event-queues.local.max-deliveries=abc\n")
    result = run_cli("-c", str(config), "publish", "local:q", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {config}:1: conductor.event-queues.local.max-")
    assert "Traceback" not in result.stderr


def test_publish_then_listen_round_trip(tmp_path: Path, queue_env: dict[str, str]) -> None:
    (tmp_path / "input.json").write_text('{"myKey": "myValue", "myNumber": 100}')
    published = run_cli(
        "publish", "local:send_email_queue", "--input", "@input.json",
        "--workflow-id", "wf-1", "--workflow-type", "my-workflow-name",
        "--workflow-version", "1", "--correlation-id", "corr-9", "--task-id", "task-1",
        cwd=tmp_path, env=queue_env,
    )  # fmt: skip
    assert published.returncode == 0, published.stderr
    task = json.loads(published.stdout)
    assert task["taskId"] == "task-1"
    assert task["status"] == "COMPLETED"
    assert task["reasonForIncompletion"] is None
    assert task["outputData"]["event_produced"] == "local:send_email_queue"
    listened = run_cli(
        "listen", "local:send_email_queue", "--count", "1", "--json", "--timeout", "10",
        cwd=tmp_path, env=queue_env,
    )  # fmt: skip
    assert listened.returncode == 0, listened.stderr
    record = json.loads(listened.stdout)
    expected_payload = {k: v for k, v in task["outputData"].items() if k != "event_produced"}
    assert record == {
        "id": "task-1",
        "payload": expected_payload,
        "headers": {},
        "key": None,
        "attempt": 1,
    }
    again = run_cli("listen", "local:send_email_queue", "--count", "1", "--timeout", "0.5",
                    cwd=tmp_path, env=queue_env)  # fmt: skip
    assert again.returncode == 1  # acked: not delivered twice
    assert again.stderr.strip() == "error: timed out after 0.5s: received 0 of 1 messages"


def test_async_complete_and_failed_task_exit_codes(
    tmp_path: Path, queue_env: dict[str, str]
) -> None:
    pending = run_cli("publish", "local:q", "--async-complete", cwd=tmp_path, env=queue_env)
    assert pending.returncode == 0
    assert json.loads(pending.stdout)["status"] == "IN_PROGRESS"
    failed = run_cli("publish", "kafka:orders", cwd=tmp_path, env=queue_env)
    assert failed.returncode == 1
    result = json.loads(failed.stdout)
    assert result["status"] == "FAILED"
    # kafka is installed here, but only the plugins named in CONDUCTOR_EVENTS_PLUGINS load
    assert "which is not in CONDUCTOR_EVENTS_PLUGINS" in result["reasonForIncompletion"]


def test_bad_input_json_is_exit_2_with_its_position(tmp_path: Path) -> None:
    result = run_cli("publish", "local:q", "--input", '{"a": 1,}', cwd=tmp_path)
    assert result.returncode == 2
    assert "invalid JSON in --input at line 1 column 9" in result.stderr
    not_object = run_cli("publish", "local:q", "--input", "[1]", cwd=tmp_path)
    assert not_object.returncode == 2
    assert "must be a JSON object" in not_object.stderr


def test_listen_on_an_empty_queue_says_what_it_received(
    tmp_path: Path, queue_env: dict[str, str]
) -> None:
    empty = run_cli("listen", "local:x", "--timeout", "0.5", cwd=tmp_path, env=queue_env)
    assert empty.returncode == 0
    assert empty.stdout == ""
    assert empty.stderr == "received 0 messages; --timeout 0.5s reached\n"
    run_cli("publish", "local:x", "--task-id", "t-1", cwd=tmp_path, env=queue_env)
    one = run_cli("listen", "local:x", "--json", "--timeout", "5", cwd=tmp_path, env=queue_env)
    assert [json.loads(line)["id"] for line in one.stdout.splitlines()] == ["t-1"]
    assert one.stderr == "received 1 message; --timeout 5s reached\n"


def test_listen_count_zero_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("listen", "local:q", "--count", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert "Invalid value for '--count': 0 is not in the range x>=1" in result.stderr


def test_listen_stops_on_sigterm_after_the_message_in_hand(
    tmp_path: Path, queue_env: dict[str, str]
) -> None:
    root = Path(__file__).resolve().parent.parent
    path = queue_env["CONDUCTOR_EVENTQUEUES_LOCAL_PATH"]
    subprocess.run(
        [sys.executable, "-m", "tests.support.local_worker", "publish", path, "jobs", "m", "300"],
        cwd=root, env={**cli_env(), "PYTHONPATH": str(root)}, check=True, timeout=120,
    )  # fmt: skip
    errors = (tmp_path / "listener.err").open("w")
    listener = subprocess.Popen(
        [sys.executable, "-m", "conductor_events", "listen", "local:jobs", "--json"],
        cwd=tmp_path, env=cli_env(queue_env), stdout=subprocess.PIPE, stderr=errors, text=True,
    )  # fmt: skip
    assert listener.stdout is not None
    first = listener.stdout.readline()
    listener.send_signal(signal.SIGTERM)
    printed = [json.loads(line)["id"] for line in [first, *listener.stdout]]
    assert listener.wait(timeout=30) == 0, (tmp_path / "listener.err").read_text()
    assert len(printed) < 300  # it stopped, rather than draining the queue first
    plural = "" if len(printed) == 1 else "s"
    summary = (tmp_path / "listener.err").read_text().splitlines()[-1]
    assert summary == f"received {len(printed)} message{plural}; stopped by a signal"
    rest = run_cli("listen", "local:jobs", "--json", "--timeout", "5", cwd=tmp_path, env=queue_env)
    assert rest.returncode == 0, rest.stderr
    remaining = [json.loads(line)["id"] for line in rest.stdout.splitlines()]
    # nothing lost, nothing twice
    assert sorted(printed + remaining) == sorted(f"m-{n}" for n in range(300))
