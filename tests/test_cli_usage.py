"""The command line's contract for mistakes and options, run as a user runs it (a real
process): every usage error is one ``error: ...`` line with exit 2, and the configuration
options are accepted after every command as well as before it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.distributions import make_distribution

USAGE_ERRORS = [
    (["nope"], "No such command 'nope'"),
    (["--log-level", "loud", "plugins"], "Invalid value for '--log-level'"),
    (["plugins", "--bogus"], "No such option '--bogus'"),
    (["config", "nope"], "No such command 'nope'"),
    (["config", "check", "-x"], "No such option '-x'"),
    (["config", "show", "--jsn"], "Did you mean '--json'? See 'conductor-events config show"),
    (["config", "check", "-c"], "Option '-c' requires an argument"),
    (["publish"], "Missing argument 'SINK'"),
    (["publish", "local:q", "extra"], "Got unexpected extra argument (extra)"),
    (["publish", "local:q", "--input", '{"a": 1,}'], "invalid JSON in --input at line 1 column 9"),
    (["publish", "local:q", "--input", "[1]"], "must be a JSON object"),
    (["publish", "local:q", "--input", "3"], "not a number"),
    (["publish", "local:q", "--input", "@missing.json"], "cannot read missing.json"),
    (["publish", "local:q", "--input", '{"a": NaN}'], "NaN is not a JSON value"),
    (["publish", "local:q", "--workflow-version", "one"], "'one' is not a valid integer"),
    (["listen"], "Missing argument 'EVENT'"),
    (["listen", "local:q", "--count", "0"], "0 is not in the range x>=1"),
    (["listen", "local:q", "--timeout", "-1"], "Invalid value for '--timeout'"),
    (["handlers", "nope"], "No such command 'nope'"),
    (["handlers", "check", "--bogus"], "No such option '--bogus'"),
    (["handlers", "check"], "set conductor.event-handlers.definitions"),
    (["executions", "--limit", "0"], "Invalid value for '--limit'"),
    (["serve", "--http", "host:http"], "expected HOST:PORT or PORT"),
    (["serve", "--shutdown-timeout", "soon"], "Invalid value for '--shutdown-timeout'"),
]


@pytest.mark.parametrize(
    ("args", "expected"), USAGE_ERRORS, ids=[" ".join(args) for args, _ in USAGE_ERRORS]
)
def test_a_usage_error_is_one_line_and_exit_2(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    result = run_cli(*args, cwd=tmp_path, plugins="local,handlers")
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert expected in lines[0]


def test_a_usage_error_names_the_commands_help(tmp_path: Path) -> None:
    result = run_cli("config", "check", "--bogus", cwd=tmp_path)
    assert result.stderr == (
        "error: No such option '--bogus'; see 'conductor-events config check --help'\n"
    )


def test_a_non_utf8_input_file_is_one_line_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "latin1.json").write_bytes('{"name": "Zoë"}'.encode("latin-1"))
    result = run_cli("publish", "local:q", "--input", "@latin1.json", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(
        "error: Invalid value for --input: cannot read latin1.json: not UTF-8 text "
        "(invalid continuation byte at byte 12)"
    )
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": NaN}', "NaN is not a JSON value"),
        ('{"a": {"b": [Infinity]}}', "Infinity is not a JSON value"),
        ('{"a": -Infinity}', "-Infinity is not a JSON value"),
        ('{"a": 1e999}', "1e999 is too large for a JSON number"),
    ],
)
def test_input_that_is_not_json_is_refused_before_publishing(
    tmp_path: Path, text: str, expected: str
) -> None:
    queue = {"CONDUCTOR_EVENTQUEUES_LOCAL_PATH": str(tmp_path / "queue.db")}
    (tmp_path / "input.json").write_text(text)
    for value in (text, "@input.json"):
        result = run_cli("publish", "local:q", "--input", value, cwd=tmp_path, env=queue)
        assert result.returncode == 2
        assert result.stdout == ""
        assert expected in result.stderr
    listened = run_cli("listen", "local:q", "--timeout", "0.5", cwd=tmp_path, env=queue)
    assert listened.stdout == ""  # nothing was published


# -- configuration options after the command ------------------------------------------------


@pytest.fixture
def invalid_config(tmp_path: Path) -> Path:
    path = tmp_path / "invalid.properties"
    path.write_text("conductor.event-queues.local.max-deliveries=abc\n")
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["config", "check"],
        ["publish", "local:q"],
        ["listen", "local:q", "--timeout", "1"],
        ["handlers", "check", "handler.json"],
        ["executions"],
        ["serve", "--handlers", "handler.json"],
    ],
    ids=lambda v: " ".join(v[:2]),
)
def test_c_after_the_command_loads_that_file(
    tmp_path: Path, invalid_config: Path, args: list[str]
) -> None:
    result = run_cli(*args, "-c", str(invalid_config), cwd=tmp_path, plugins="local,handlers")
    assert result.returncode == 2, result.stderr
    assert f"{invalid_config}:1: conductor.event-queues.local.max-deliveries" in (
        result.stdout + result.stderr
    )


def test_plugins_reads_c_after_the_command(tmp_path: Path) -> None:
    config = tmp_path / "off.properties"
    config.write_text("conductor.event-queues.local.enabled=false\n")
    result = run_cli("plugins", "--json", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    records = {r["name"]: r for r in json.loads(result.stdout)}
    assert records["local"]["status"] == "disabled-by-config"


def test_c_before_and_after_the_command_add_up_in_order(tmp_path: Path) -> None:
    first = tmp_path / "a.properties"
    first.write_text("conductor.event-queues.local.max-deliveries=3\n")
    second = tmp_path / "b.properties"
    second.write_text(
        "conductor.event-queues.local.max-deliveries=4\n"
        "conductor.event-queues.local.visibility-timeout=90s\n"
    )
    third = tmp_path / "c.properties"
    third.write_text("conductor.event-queues.local.visibility-timeout=120s\n")
    from_env = tmp_path / "env.properties"
    from_env.write_text("conductor.event-queues.local.poll-interval=1s\n")
    env = {"CONDUCTOR_EVENTS_CONFIG": str(from_env)}
    result = run_cli(
        "-c", str(first), "config", "show", "--json", "-c", str(second), "-c", str(third),
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = {row["key"]: row for row in json.loads(result.stdout)}
    assert rows["conductor.event-queues.local.max-deliveries"]["source"] == f"{second}:1"
    assert rows["conductor.event-queues.local.visibility-timeout"]["source"] == f"{third}:1"
    # -c given anywhere replaces the CONDUCTOR_EVENTS_CONFIG default
    assert rows["conductor.event-queues.local.poll-interval"]["source"] == "default"
    only_after = run_cli("config", "show", "--json", "-c", str(third), cwd=tmp_path, env=env)
    rows = {row["key"]: row for row in json.loads(only_after.stdout)}
    assert rows["conductor.event-queues.local.poll-interval"]["source"] == "default"
    assert rows["conductor.event-queues.local.visibility-timeout"]["source"] == f"{third}:1"


def test_strict_plugins_after_the_command(tmp_path: Path) -> None:
    site = tmp_path / "site"
    make_distribution(
        site, "fake-broken", "0.9.0", {"broken": "fake_broken"}, {"fake_broken": "import nope\n"}
    )
    env = {"PYTHONPATH": str(site)}
    lenient = run_cli("plugins", cwd=tmp_path, env=env, plugins="local,broken")
    assert lenient.returncode == 0, lenient.stderr
    strict = run_cli("plugins", "--strict-plugins", cwd=tmp_path, env=env, plugins="local,broken")
    assert strict.returncode == 2, strict.stderr
    last = strict.stderr.splitlines()[-1]
    assert last.startswith("error: plugin broken (fake-broken 0.9.0) failed to load")
