"""``conductor.event-queues.nats.*`` and ``jsm.*`` as bound from properties files and the
environment: Conductor's keys and defaults, checks that name the key, masked secrets."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from conductor_events_nats.settings import JetStreamSettings, NatsSettings, stream_name_for

from conductor_events.config import Configuration, load_configuration
from conductor_events.config.show import effective_entries
from conductor_events.plugins import PluginHost

JSM = "conductor.event-queues.jsm"
NATS = "conductor.event-queues.nats"


def load(plugins: PluginHost, tmp_path: Path, text: str, **environ: str) -> Configuration:
    path = tmp_path / "app.properties"
    path.write_text(text, encoding="utf-8")
    return load_configuration([path], plugins, environ)


def jsm(config: Configuration) -> JetStreamSettings:
    config.raise_for_errors()
    settings = config.settings("jsm")
    assert isinstance(settings, JetStreamSettings)
    return settings


def test_jsm_defaults_are_conductors_where_safe(plugins: PluginHost, tmp_path: Path) -> None:
    settings = jsm(load(plugins, tmp_path, ""))
    assert settings.enabled is False
    assert settings.url == "nats://localhost:4222"
    assert settings.durable_name == "defaultQueue"
    assert settings.default_queue_group == "wait-group"
    assert settings.listener_queue_prefix == ""
    assert settings.stream_storage_type == "file"
    assert settings.stream_max_bytes == -1
    assert settings.max_reconnects == -1
    assert settings.poll_time_duration == timedelta(milliseconds=100)
    assert settings.ack_wait == timedelta(seconds=60)
    assert settings.max_ack_pending == 100
    assert settings.max_deliver == 5
    # a single server refuses Conductor's 3 replicas
    assert settings.replicas == 1
    # what Conductor lacked
    assert settings.auto_create_streams is True
    assert settings.dead_letter_subject_for("orders.new") == "orders.new.dlq"


def test_a_conductor_properties_file_binds(plugins: PluginHost, tmp_path: Path) -> None:
    settings = jsm(
        load(
            plugins,
            tmp_path,
            f"{JSM}.enabled=true\n"
            f"{JSM}.url=nats://a:4222, nats://b:4222\n"
            f"{JSM}.durableName=orders-workers\n"  # Spring's relaxed binding
            f"{JSM}.ack-wait=30000\n"  # bare number: milliseconds
            f"{JSM}.max-deliver=3\n"
            f"{JSM}.stream-storage-type=memory\n"
            f"{JSM}.dead-letter-subject=dead.{{subject}}\n",
        )
    )
    assert settings.enabled
    assert settings.servers == ["nats://a:4222", "nats://b:4222"]
    assert settings.durable_name == "orders-workers"
    assert settings.ack_wait == timedelta(seconds=30)
    assert settings.max_deliver == 3
    assert settings.stream_storage_type == "memory"
    assert settings.dead_letter_subject_for("orders") == "dead.orders"


def test_environment_overrides_in_springs_form(plugins: PluginHost, tmp_path: Path) -> None:
    settings = jsm(
        load(
            plugins,
            tmp_path,
            f"{JSM}.max-deliver=2\n",
            CONDUCTOR_EVENTQUEUES_JSM_MAXDELIVER="7",
            CONDUCTOR_EVENTQUEUES_JSM_AUTOCREATESTREAMS="false",
        )
    )
    assert settings.max_deliver == 7
    assert settings.auto_create_streams is False


@pytest.mark.parametrize(
    ("line", "key", "message"),
    [
        (f"{JSM}.url=http://example.org", "url", "is not a NATS URL"),
        (f"{JSM}.url=nats://host:notaport", "url", "invalid port"),
        (f"{JSM}.dead-letter-subject=dead.*", "dead-letter-subject", "no wildcards"),
        (f"{JSM}.durable-name=orders.workers", "durable-name", "letters, digits, '_' or '-'"),
        (f"{JSM}.max-deliver=0", "max-deliver", "greater than or equal to 1"),
        (f"{JSM}.ack-wait=0s", "ack-wait", "must be more than 0"),
        (f"{JSM}.stream-storage-type=disk", "stream-storage-type", "'file' or 'memory'"),
        (f"{NATS}.connect-timeout=0", "connect-timeout", "must be more than 0"),
    ],
)
def test_bad_values_name_the_key_file_line_and_plugin(
    plugins: PluginHost, tmp_path: Path, line: str, key: str, message: str
) -> None:
    section = line.split("=")[0].rsplit(".", 1)[0]
    config = load(plugins, tmp_path, f"{section}.enabled=true\n{line}\n")
    (problem,) = [str(p) for p in config.errors]
    assert problem.startswith(f"{tmp_path / 'app.properties'}:2: {section}.{key}: ")
    assert message in problem
    assert problem.endswith("(plugin conductor-events-nats 0.1.0)")


def test_a_password_without_a_user_is_reported(plugins: PluginHost, tmp_path: Path) -> None:
    config = load(plugins, tmp_path, f"{NATS}.enabled=true\n{NATS}.password=s3cret-pw\n")
    (problem,) = [str(p) for p in config.errors]
    assert f"{NATS}.password: is set without {NATS}.username" in problem
    assert "s3cret-pw" not in problem


def test_secrets_are_masked_in_config_show_and_repr(plugins: PluginHost, tmp_path: Path) -> None:
    config = load(
        plugins,
        tmp_path,
        f"{JSM}.username=alice\n{JSM}.password=s3cret-pw\n{NATS}.token=t0ken-value\n",
    )
    shown = {e.key: e.display_value for e in effective_entries(config, plugins)}
    assert shown[f"{JSM}.password"] == "******"
    assert shown[f"{NATS}.token"] == "******"
    assert shown[f"{JSM}.username"] == "alice"
    assert "s3cret-pw" not in repr(jsm(config))
    nats = config.settings("nats")
    assert isinstance(nats, NatsSettings)
    assert "t0ken-value" not in repr(nats)


def test_user_information_in_the_url_is_never_shown() -> None:
    settings = NatsSettings(url="nats://alice:hunter2@127.0.0.1:4222,tls://bob:pw@h2")
    assert settings.shown_url == "nats://127.0.0.1:4222,tls://h2"


def test_streams_are_named_as_conductor_names_them() -> None:
    assert stream_name_for("orders.new") == "ORDERS_NEW"
    assert stream_name_for("conductor-completed") == "CONDUCTOR-COMPLETED"
