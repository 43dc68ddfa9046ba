"""Secrets never reach a log line, an error message or ``config show``."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import structlog
from pydantic import Field, SecretStr

import conductor_events
from conductor_events.config import QueueSettings, load_configuration
from conductor_events.config.binding import known_keys
from conductor_events.config.show import effective_entries
from conductor_events.logging import configure_logging
from conductor_events.plugins import PluginHost
from conductor_events.queues import QueueClient, QueueType
from tests.support.cli import run_cli


class VaultSettings(QueueSettings):
    section: ClassVar[str] = "conductor.event-queues.vault"

    password: SecretStr | None = None
    token: SecretStr = Field(default=SecretStr("unset-token"), min_length=12)
    client: dict[str, str] = Field(default_factory=dict)


def _no_client(settings: VaultSettings) -> QueueClient:
    raise AssertionError("never connected in these tests")


class VaultPlugin:
    @conductor_events.hookimpl
    def register_queue_types(self, register: Callable[[QueueType[Any]], None]) -> None:
        register(QueueType(name="vault", settings=VaultSettings, connect=_no_client))


@pytest.fixture
def vault(plugins: PluginHost) -> PluginHost:
    plugins.add_plugin(VaultPlugin(), "vault")
    return plugins


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("debug", "json", stream)
    yield stream
    structlog.reset_defaults()


def test_secret_fields_and_secret_map_keys_are_masked_everywhere(
    vault: PluginHost, write_properties: Callable[..., Path], log_stream: io.StringIO
) -> None:
    file = write_properties(
        "conductor.event-queues.vault.password=hunter2-password\n"
        "conductor.event-queues.vault.token=short\n"  # invalid: the error must not echo it
        "conductor.event-queues.vault.client.sasl.plain.password=map-secret-value\n"
        "conductor.event-queues.vault.client.linger.ms=5\n"
    )
    config = load_configuration([file], vault, {})
    (error,) = config.errors
    assert str(error).startswith(f"{file}:2: conductor.event-queues.vault.token: ")
    assert "short" not in str(error)
    shown = {e.key: e.display_value for e in effective_entries(config, vault)}
    assert shown["conductor.event-queues.vault.password"] == "******"
    assert shown["conductor.event-queues.vault.client.sasl.plain.password"] == "******"
    assert shown["conductor.event-queues.vault.client.linger.ms"] == "5"
    log = structlog.get_logger("test")
    good = write_properties(
        "conductor.event-queues.vault.password=hunter2-password\n"
        "conductor.event-queues.vault.token=long-enough-token-value\n"
    )
    settings = load_configuration([good], vault, {}).settings("vault")
    log.info("settings.loaded", settings=settings, password="plain-kwarg-secret")
    log.info("client.options", sasl_plain_password="another-secret")
    output = log_stream.getvalue()
    assert "settings.loaded" in output
    for secret in ("hunter2-password", "long-enough-token-value", "plain-kwarg-secret",
                   "another-secret"):  # fmt: skip
        assert secret not in output


def installed_secret_keys() -> list[str]:
    """Every SecretStr property key of every plugin installed in this environment."""
    host = PluginHost(environ={})
    return [
        f"conductor.event-queues.{name}.{suffix}"
        for name, registered in host.queue_types().items()
        for suffix, shape in known_keys(registered.queue_type.settings)
        if shape.secret
    ]


def test_every_installed_secret_field_is_masked_by_config_show(tmp_path: Path) -> None:
    keys = [*installed_secret_keys(), "conductor.event-queues.local.no-such-secret-password"]
    file = tmp_path / "app.properties"
    file.write_text("".join(f"{key}=SECRET-{n}-VALUE\n" for n, key in enumerate(keys)))
    shown = run_cli("-c", str(file), "config", "show", "--json", cwd=tmp_path, plugins=None)
    checked = run_cli("-c", str(file), "config", "check", cwd=tmp_path, plugins=None)
    everything = shown.stdout + shown.stderr + checked.stdout + checked.stderr
    assert "SECRET-" not in everything
    rows = {row["key"]: row["value"] for row in json.loads(shown.stdout or "[]")}
    for key in installed_secret_keys():
        assert rows[key] == "******"
