"""Configuration through pydantic-settings: the sources, their one priority order, and what
they never do (read a user's environment outside a load, print a secret in its debug log)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import Field, SecretStr

import conductor_events
from conductor_events.backend import QueueClient, QueueType
from conductor_events.config import Configuration, QueueSettings
from conductor_events.config.model import Entry
from conductor_events.config.properties import Source
from conductor_events.config.sources import (
    PropertiesFileSource,
    SectionSources,
    SpringEnvironmentSource,
    reading,
)
from conductor_events.local.settings import LocalQueueSettings
from conductor_events.plugins import PluginHost
from conductor_events_handlers.settings import ServerSettings

Load = Callable[..., Configuration]
Write = Callable[..., Path]

MAX_DELIVERIES = "conductor.event-queues.local.max-deliveries"


def local(config: Configuration) -> LocalQueueSettings:
    settings = config.settings("local")
    assert isinstance(settings, LocalQueueSettings)
    return settings


def _entry(value: str, source: Source) -> Entry:
    return Entry(MAX_DELIVERIES, value, source)


def test_priority_is_init_then_environment_then_files_then_defaults() -> None:
    loc = ("max_deliveries",)
    environment = SpringEnvironmentSource(
        LocalQueueSettings,
        {loc: _entry("6", Source(env="CONDUCTOR_EVENTQUEUES_LOCAL_MAXDELIVERIES"))},
    )
    files = PropertiesFileSource(
        LocalQueueSettings,
        {loc: _entry("4", Source("a.properties", 1)), ("path",): _entry("q.db", Source("a", 2))},
    )
    with reading(LocalQueueSettings, SectionSources(environment, files)):
        assert LocalQueueSettings(max_deliveries=9).max_deliveries == 9
        built = LocalQueueSettings()
    assert built.max_deliveries == 6
    assert built.path == "q.db"
    assert built.visibility_timeout == LocalQueueSettings.model_fields["visibility_timeout"].default
    with reading(
        LocalQueueSettings, SectionSources(SpringEnvironmentSource(LocalQueueSettings, {}), files)
    ):
        assert LocalQueueSettings().max_deliveries == 4


def test_later_file_wins_and_environment_wins_over_both(
    load: Load, write_properties: Write
) -> None:
    first = write_properties(f"{MAX_DELIVERIES}=4\nconductor.event-queues.local.path=a.db\n")
    second = write_properties("conductor.eventQueues.local.maxDeliveries=5\n")
    config = load(first, second)
    assert local(config).max_deliveries == 5
    assert str(config.source_of(MAX_DELIVERIES)) == f"{second}:1"
    config = load(first, second, environ={"CONDUCTOR_EVENTQUEUES_LOCAL_MAXDELIVERIES": "7"})
    assert (local(config).max_deliveries, local(config).path) == (7, "a.db")
    assert str(config.source_of(MAX_DELIVERIES)) == "env CONDUCTOR_EVENTQUEUES_LOCAL_MAXDELIVERIES"


@pytest.mark.usefixtures("handler_sections")
def test_a_nested_model_merges_the_environment_and_a_file(
    load: Load, write_properties: Write
) -> None:
    """``auth.key`` from a file and ``auth.secret`` from the environment are one ``auth``: the
    rule that needs both passes."""
    file = write_properties("conductor.server.auth.key=app-key\n")
    config = load(file, environ={"CONDUCTOR_SERVER_AUTH_SECRET": "s3cret-from-env"})
    assert config.errors == []
    server = config.section(ServerSettings)
    assert server.auth.key == "app-key"
    assert server.auth.secret is not None
    assert server.auth.secret.get_secret_value() == "s3cret-from-env"


@pytest.mark.usefixtures("handler_sections")
def test_an_invalid_environment_value_is_set_aside_in_every_source(
    load: Load, write_properties: Write
) -> None:
    """The variable overrides the file's valid value; once set aside, neither is used, so the
    rule across keys still runs and both problems are reported, each where it was set."""
    file = write_properties(
        "conductor.server.auth.key=app-key\nconductor.server.auth.token-ttl=30s\n"
    )
    config = load(file, environ={"CONDUCTOR_SERVER_AUTH_TOKENTTL": "soon"})
    assert [str(p) for p in config.errors] == [
        f"{file}:1: conductor.server.auth.key: auth.key and auth.secret must be set together "
        "(plugin conductor-events-handlers 0.1.0)",
        "env CONDUCTOR_SERVER_AUTH_TOKENTTL: conductor.server.auth.token-ttl: invalid value "
        "'soon': invalid duration 'soon' (expected e.g. 100ms, 60s, 5m or PT1M) "
        "(plugin conductor-events-handlers 0.1.0)",
    ]


def test_settings_built_outside_a_load_read_neither_environment_nor_files(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An application or a test building a settings model gets its arguments and defaults,
    never the user's ``CONDUCTOR_*`` variables (nor pydantic-settings' own env names)."""
    monkeypatch.setenv("CONDUCTOR_EVENTQUEUES_LOCAL_MAXDELIVERIES", "7")
    monkeypatch.setenv("MAX_DELIVERIES", "8")
    default = LocalQueueSettings.model_fields["max_deliveries"].default
    assert LocalQueueSettings().max_deliveries == default
    assert LocalQueueSettings(max_deliveries=3).max_deliveries == 3
    other = SectionSources(
        SpringEnvironmentSource(ServerSettings, {}), PropertiesFileSource(ServerSettings, {})
    )
    with reading(ServerSettings, other):
        assert LocalQueueSettings().max_deliveries == default


class VaultSettings(QueueSettings):
    section: ClassVar[str] = "conductor.event-queues.vault"

    password: SecretStr | None = None
    token: SecretStr | None = None
    client: dict[str, str] = Field(default_factory=dict)


def _no_client(settings: VaultSettings) -> QueueClient:
    raise AssertionError("never connected in these tests")


class VaultPlugin:
    @conductor_events.hookimpl
    def register_queue_types(self, register: Callable[[QueueType[Any]], None]) -> None:
        register(QueueType(name="vault", settings=VaultSettings, connect=_no_client))


def test_pydantic_settings_debug_log_never_shows_a_secret(
    plugins: PluginHost,
    load: Load,
    write_properties: Write,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``PYDANTIC_SETTINGS_DEBUG`` logs what each source handed over: secrets are masked there
    too, and still arrive intact, as plain text in a map."""
    plugins.add_plugin(VaultPlugin(), "vault")
    file = write_properties(
        "conductor.event-queues.vault.password=file-password-1\n"
        "conductor.event-queues.vault.client.sasl.password=map-password-2\n"
        "conductor.event-queues.vault.client.linger.ms=5\n"
    )
    monkeypatch.setenv("PYDANTIC_SETTINGS_DEBUG", "1")
    caplog.set_level(logging.DEBUG, logger="pydantic_settings")
    config = load(file, environ={"CONDUCTOR_EVENTQUEUES_VAULT_TOKEN": "env-token-3"})
    assert "Resolving settings for 'VaultSettings'" in caplog.text
    assert "'linger.ms': '5'" in caplog.text
    for secret in ("file-password-1", "map-password-2", "env-token-3"):
        assert secret not in caplog.text
    vault = config.settings("vault")
    assert isinstance(vault, VaultSettings)
    assert vault.password is not None
    assert vault.password.get_secret_value() == "file-password-1"
    assert vault.token is not None
    assert vault.token.get_secret_value() == "env-token-3"
    assert type(vault.client["sasl.password"]) is str
    assert vault.client["sasl.password"] == "map-password-2"
