"""Secrets never reach a log line, an error message or ``config show``."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import click
import pytest
import structlog
from pydantic import Field, SecretStr, ValidationError

import conductor_events
from conductor_events.backend import QueueClient, QueueType
from conductor_events.cli import cli, main
from conductor_events.config import Configuration, QueueSettings, load_configuration
from conductor_events.config.binding import known_keys
from conductor_events.config.masking import MASK, NOT_SET, is_secret_name
from conductor_events.config.show import effective_entries
from conductor_events.logging import configure_logging
from conductor_events.plugins import PluginHost
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
    sections = {
        reg.queue_type.section: reg.queue_type.settings for reg in host.queue_types().values()
    }
    return [
        f"{section}.{suffix}"
        for section, settings in sections.items()
        for suffix, shape in known_keys(settings)
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


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("sasl.plain.password", True),
        ("ssl.key.password", True),
        ("ssl.password", True),
        ("sasl.jaas.config", True),
        ("ssl.keystore.key", True),
        ("basic.auth.user.info", True),
        ("SharedAccessKey", True),
        ("sasl_plain_password", True),
        ("apiKey", True),
        ("client.secret", True),
        ("oauth.token", True),
        ("aws_credentials", True),
        ("key", False),
        ("key.serializer", False),
        ("sasl.plain.username", False),
        ("ssl.keyfile", False),
        ("linger.ms", False),
        ("message_id", False),
    ],
)
def test_which_free_form_keys_name_a_secret(key: str, secret: bool) -> None:
    assert is_secret_name(key) is secret


@pytest.mark.usefixtures("handler_sections")
def test_every_repr_of_settings_and_configuration_is_masked(
    vault: PluginHost, write_properties: Callable[..., Path]
) -> None:
    file = write_properties(
        "conductor.event-queues.vault.password=hunter2-password\n"
        "conductor.event-queues.vault.token=long-enough-token-value\n"
        "conductor.event-queues.vault.client.sasl.plain.password=map-secret-value\n"
        "conductor.event-queues.vault.client.linger.ms=5\n"
        "conductor.server.auth.key=app-key\n"
        "conductor.server.auth.secret=orkes-secret-value\n"
    )
    config = load_configuration([file], vault, {})
    settings = config.settings("vault")
    assert isinstance(settings, VaultSettings)
    views = [repr(settings), str(settings), str(settings.summary()), repr(config), str(config)]
    views += [repr(entry) for entry in config.entries.values()]
    for view in views:
        for secret in ("hunter2-password", "long-enough-token-value", "map-secret-value",
                       "orkes-secret-value"):  # fmt: skip
            assert secret not in view
    assert "client={'sasl.plain.password': '******', 'linger.ms': '5'}" in repr(settings)
    assert "'conductor.server.auth.key': 'app-key'" in repr(config)
    assert settings.client["sasl.plain.password"] == "map-secret-value"  # the value is intact


def test_the_plugin_trace_masks_what_it_logs(
    write_properties: Callable[..., Path], log_stream: io.StringIO
) -> None:
    host = PluginHost(entry_points=[], environ={"CONDUCTOR_EVENTS_TRACE_PLUGINS": "1"})
    host.add_plugin(VaultPlugin(), "vault")
    host.add_plugin(ValidatingVault(), "vault-checks")
    file = write_properties(
        "conductor.event-queues.vault.password=hunter2-password\n"
        "conductor.event-queues.vault.client.sasl.plain.password=map-secret-value\n"
    )
    with pytest.raises(ValidationError, match="map-secret-value"):  # the plugin's own error
        load_configuration([file], host, {})
    output = log_stream.getvalue()
    traced = [json.loads(line) for line in output.splitlines()]
    calls = [line for line in traced if line["event"] == "plugins.trace.call"]
    assert [line["hook"] for line in calls] == ["register_queue_types", "validate_config"]
    assert "'sasl.plain.password': '******'" in calls[1]["kwargs"]
    errors = [line for line in traced if line["event"] == "plugins.trace.error"]
    assert errors[0]["error"].startswith("ValidationError(VaultSettings: enabled: Input should")
    assert "hunter2-password" not in output
    assert "map-secret-value" not in output


class ValidatingVault:
    """A checker that fails with a pydantic error quoting the input, as a careless one might."""

    @staticmethod
    @conductor_events.hookimpl
    def validate_config(config: Configuration) -> None:
        settings = config.settings("vault")
        assert isinstance(settings, VaultSettings)
        VaultSettings.model_validate({"enabled": settings.client["sasl.plain.password"]})


def test_log_lines_mask_secrets_nested_in_maps_and_models(log_stream: io.StringIO) -> None:
    log = structlog.get_logger("test")
    settings = VaultSettings(password=SecretStr("hunter2-password"), client={"api.key": "k-123"})
    log.info("nested", options={"sasl_plain_password": "pw-1", "linger_ms": 5}, items=[settings])
    line = json.loads(log_stream.getvalue())
    assert line["options"] == {"sasl_plain_password": "******", "linger_ms": 5}
    assert "hunter2-password" not in line["items"][0]
    assert "k-123" not in line["items"][0]


@pytest.mark.usefixtures("handler_sections")
def test_config_show_says_not_set_for_an_empty_secret(
    vault: PluginHost, write_properties: Callable[..., Path]
) -> None:
    file = write_properties(
        "conductor.event-queues.vault.password=\n"
        "conductor.event-queues.vault.client.sasl.plain.password=map-secret-value\n"
    )
    shown = {
        e.key: e.display_value
        for e in effective_entries(load_configuration([file], vault, {}), vault)
    }
    assert shown["conductor.event-queues.vault.password"] == NOT_SET  # set, but to nothing
    assert shown["conductor.event-queues.vault.client.sasl.plain.password"] == MASK
    assert shown["conductor.event-queues.vault.token"] == MASK  # a default with a value
    assert shown["conductor.server.auth.secret"] == NOT_SET  # an unset default
    assert shown["conductor.server.auth.token"] == NOT_SET


def test_an_unexpected_validation_error_is_one_line_without_its_input(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A plugin hook that raises a pydantic error reaches the CLI's catch-all: the line it
    prints names the field and the problem, never the value that failed (it may be a secret)."""

    @click.command("raise-validation-error")
    def failing() -> None:
        VaultSettings.model_validate({"enabled": "map-secret-value"})

    cli.add_command(failing)
    try:
        with pytest.raises(SystemExit) as exited:
            main(["raise-validation-error"])
    finally:
        cli.commands.pop("raise-validation-error")
    err = capsys.readouterr().err
    assert exited.value.code == 1
    assert err.count("\n") == 1
    assert err.startswith("error: unexpected ValidationError(VaultSettings: enabled: Input should")
    assert "map-secret-value" not in err
