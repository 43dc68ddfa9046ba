"""``conductor.server.*`` and ``conductor.event-handlers.*``: bound from properties and
Spring-form environment variables, checked strictly like the core's other sections."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from conductor_events.config import load_configuration
from conductor_events.plugins import PluginHost
from conductor_events_handlers.processor import AckPolicy
from conductor_events_handlers.settings import (
    EventHandlerSettings,
    NonTransientPolicy,
    ServerSettings,
    parse_size,
)


def test_sections_from_a_properties_file(tmp_path: Path, host: PluginHost) -> None:
    path = tmp_path / "app.properties"
    path.write_text(
        "conductor.server.url=https://conductor.example.com/api\n"
        "conductor.server.auth.key=app-key\n"
        "conductor.server.auth.secret=app-secret\n"
        "conductor.server.readTimeout=10s\n"
        "conductor.event-handlers.definitions=handlers/, extra.json\n"
        "conductor.event-handlers.script.timeout=500ms\n"
        "conductor.event-handlers.script.memory-limit=64MB\n"
        "conductor.event-handlers.retry.max-attempts=8\n"
        "conductor.event-handlers.non-transient-failure=ack\n"
        "conductor.event-handlers.allowed-env=REGION,STAGE\n"
    )
    config = load_configuration([path], host, {})
    assert config.problems == []
    server = config.section(ServerSettings)
    assert server.url == "https://conductor.example.com/api"
    assert server.auth.key == "app-key"
    assert server.auth.secret is not None
    assert server.auth.secret.get_secret_value() == "app-secret"
    assert server.read_timeout == timedelta(seconds=10)
    handlers = config.section(EventHandlerSettings)
    assert handlers.definitions == ["handlers/", "extra.json"]
    assert handlers.script.timeout == timedelta(milliseconds=500)
    assert handlers.script.memory_limit == 64 << 20
    assert handlers.non_transient_failure is NonTransientPolicy.ACK
    assert handlers.allowed_env == ["REGION", "STAGE"]
    assert AckPolicy.from_settings(handlers) == AckPolicy(8, 1.0, 300.0, NonTransientPolicy.ACK)


def test_environment_overrides_in_springs_form(host: PluginHost) -> None:
    env = {"CONDUCTOR_SERVER_AUTH_TOKEN": "t0k3n", "CONDUCTOR_EVENTHANDLERS_RETRY_MAXATTEMPTS": "2"}
    config = load_configuration([], host, env)
    assert config.problems == []
    token = config.section(ServerSettings).auth.token
    assert token is not None
    assert token.get_secret_value() == "t0k3n"
    assert config.section(EventHandlerSettings).retry.max_attempts == 2


def test_defaults_when_nothing_is_set(host: PluginHost) -> None:
    config = load_configuration([], host, {})
    assert config.section(ServerSettings).url == "http://localhost:8080/api"
    handlers = config.section(EventHandlerSettings)
    assert handlers.script.timeout == timedelta(seconds=4)  # Conductor's default
    assert handlers.non_transient_failure is NonTransientPolicy.DEAD_LETTER
    assert handlers.allowed_env == []


def test_problems_name_key_file_and_line(tmp_path: Path, host: PluginHost) -> None:
    path = tmp_path / "app.properties"
    path.write_text(
        "conductor.event-handlers.retry.max-atempts=3\n"
        "conductor.event-handlers.non-transient-failure=drop\n"
        "conductor.server.auth.token=secret-value\n"
        "conductor.server.auth.key=k\n"
        "conductor.server.auth.secret=s\n"
    )
    problems = [str(p) for p in load_configuration([path], host, {}).problems]
    assert problems[0] == (
        f"{path}:1: conductor.event-handlers.retry.max-atempts: unknown property of section "
        "conductor.event-handlers; did you mean 'conductor.event-handlers.retry.max-attempts'? "
        "(plugin conductor-events-handlers 0.1.0)"
    )
    assert problems[1].startswith(
        f"{path}:2: conductor.event-handlers.non-transient-failure: invalid value 'drop'"
    )
    assert "not both" in problems[2]
    assert all("secret-value" not in p for p in problems)


@pytest.mark.parametrize(
    ("text", "size"),
    [("512KB", 512 << 10), ("32MB", 32 << 20), ("1gb", 1 << 30), ("2048", 2048), (4096, 4096)],
)
def test_sizes(text: object, size: int) -> None:
    assert parse_size(text) == size


def test_a_bad_size() -> None:
    with pytest.raises(ValueError, match="expected a size"):
        parse_size("lots")
