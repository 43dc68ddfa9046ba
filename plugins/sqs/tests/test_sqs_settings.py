"""``conductor.event-queues.sqs.*`` as bound from properties files and the environment."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from conductor_events_sqs.settings import SqsSettings

from conductor_events.config import Configuration, load_configuration
from conductor_events.config.show import effective_entries
from conductor_events.plugins import PluginHost

PREFIX = "conductor.event-queues.sqs"


def load(plugins: PluginHost, tmp_path: Path, text: str, **environ: str) -> Configuration:
    path = tmp_path / "app.properties"
    path.write_text(text, encoding="utf-8")
    return load_configuration([path], plugins, environ)


def sqs(config: Configuration) -> SqsSettings:
    config.raise_for_errors()
    settings = config.settings("sqs")
    assert isinstance(settings, SqsSettings)
    return settings


def test_defaults_are_conductors(plugins: PluginHost, tmp_path: Path) -> None:
    settings = sqs(load(plugins, tmp_path, ""))
    assert settings.enabled is False
    assert settings.batch_size == 1
    assert settings.poll_time_duration == timedelta(milliseconds=100)
    assert settings.visibility_timeout == timedelta(seconds=60)
    assert settings.authorized_accounts == []
    assert settings.endpoint == ""
    assert settings.listener_queue_prefix == ""
    assert settings.listener_queues() == [
        "conductor_sqs_notify_test_COMPLETED",
        "conductor_sqs_notify_test_FAILED",
    ]
    # what Conductor lacked
    assert settings.wait_time == timedelta(seconds=20)
    assert settings.create_queues is True
    assert settings.dead_letter_queue == ""
    assert settings.region is None
    assert settings.profile is None


def test_a_conductor_properties_file_binds(plugins: PluginHost, tmp_path: Path) -> None:
    settings = sqs(
        load(
            plugins,
            tmp_path,
            f"{PREFIX}.enabled=true\n"
            f"{PREFIX}.batchSize=10\n"  # Spring's relaxed binding
            f"{PREFIX}.poll-time-duration=250\n"  # bare number: milliseconds
            f"{PREFIX}.visibility-timeout=5m\n"
            f"{PREFIX}.authorized-accounts=111122223333, 444455556666\n"
            f"{PREFIX}.listener-queue-prefix=prod_\n"
            f"{PREFIX}.region=eu-west-1\n"
            f"{PREFIX}.wait-time=0\n"
            f"{PREFIX}.dead-letter-queue={{queue}}_dlq\n"
            f"{PREFIX}.max-receive-count=3\n",
        )
    )
    assert settings.enabled
    assert settings.batch_size == 10
    assert settings.poll_time_duration == timedelta(milliseconds=250)
    assert settings.visibility_seconds == 300
    assert settings.authorized_accounts == ["111122223333", "444455556666"]
    assert settings.listener_queues() == ["prod_COMPLETED", "prod_FAILED"]
    assert settings.region == "eu-west-1"
    assert settings.wait_seconds == 0
    assert settings.dead_letter_queue == "{queue}_dlq"
    assert settings.max_receive_count == 3


def test_environment_overrides_in_springs_form(plugins: PluginHost, tmp_path: Path) -> None:
    settings = sqs(
        load(
            plugins,
            tmp_path,
            f"{PREFIX}.batch-size=2\n",
            CONDUCTOR_EVENTQUEUES_SQS_BATCHSIZE="7",
            CONDUCTOR_EVENTQUEUES_SQS_CREATEQUEUES="false",
        )
    )
    assert settings.batch_size == 7
    assert settings.create_queues is False


@pytest.mark.parametrize(
    ("line", "key", "message"),
    [
        ("batch-size=11", "batch-size", "SQS receives 1 to 10 messages per call; 11"),
        ("batch-size=0", "batch-size", "SQS receives 1 to 10 messages per call"),
        ("visibility-timeout=13h", "visibility-timeout", "over SQS's maximum visibility timeout"),
        ("wait-time=21s", "wait-time", "over SQS's maximum long-polling wait of 20s"),
        ("authorized-accounts=1234,111122223333", "authorized-accounts", "12 digits; '1234'"),
        ("endpoint=localhost:4566", "endpoint", "expected an http:// or https:// URL"),
        ("max-receive-count=0", "max-receive-count", "greater than or equal to 1"),
        ("read-timeout=0s", "read-timeout", "must be more than 0"),
    ],
)
def test_bad_values_name_the_key_file_line_and_plugin(
    plugins: PluginHost, tmp_path: Path, line: str, key: str, message: str
) -> None:
    config = load(plugins, tmp_path, f"{PREFIX}.enabled=true\n{PREFIX}.{line}\n")
    (problem,) = [str(p) for p in config.errors]
    assert problem.startswith(f"{tmp_path / 'app.properties'}:2: {PREFIX}.{key}: ")
    assert message in problem
    assert problem.endswith("(plugin conductor-events-sqs 0.1.0)")


def test_an_access_key_without_its_secret_is_reported(plugins: PluginHost, tmp_path: Path) -> None:
    config = load(plugins, tmp_path, f"{PREFIX}.access-key-id=AKIAEXAMPLE\n")
    (problem,) = [str(p) for p in config.errors]
    assert f"{PREFIX}.access-key-id: is set without {PREFIX}.secret-access-key" in problem
    assert ":1:" in problem


def test_an_unknown_key_gets_a_did_you_mean(plugins: PluginHost, tmp_path: Path) -> None:
    config = load(plugins, tmp_path, f"{PREFIX}.visibilty-timeout=5\n")
    (problem,) = [str(p) for p in config.warnings]
    assert f"did you mean '{PREFIX}.visibility-timeout'" in problem


def test_secrets_are_masked_in_config_show(plugins: PluginHost, tmp_path: Path) -> None:
    config = load(
        plugins,
        tmp_path,
        f"{PREFIX}.access-key-id=AKIAEXAMPLE\n{PREFIX}.secret-access-key=wJalrXUtnFEMI\n",
    )
    shown = {e.key: e.display_value for e in effective_entries(config, plugins)}
    assert shown[f"{PREFIX}.secret-access-key"] == "******"
    assert shown[f"{PREFIX}.access-key-id"] == "AKIAEXAMPLE"
    assert "wJalrXUtnFEMI" not in repr(sqs(config))
