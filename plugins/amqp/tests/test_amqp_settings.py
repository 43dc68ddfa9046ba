"""``conductor.event-queues.amqp.*`` as bound from properties files and the environment:
Conductor's one section for both AMQP types, its keys, its defaults, secrets masked."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from conductor_events_amqp.settings import AmqpSettings, RetryType

from conductor_events.config import Configuration, load_configuration
from conductor_events.config.show import effective_entries, show_lines
from conductor_events.plugins import PluginHost

AMQP = "conductor.event-queues.amqp"


def load(plugins: PluginHost, tmp_path: Path, text: str, **environ: str) -> Configuration:
    path = tmp_path / "app.properties"
    path.write_text(text, encoding="utf-8")
    return load_configuration([path], plugins, environ)


def queue_settings(config: Configuration) -> AmqpSettings:
    config.raise_for_errors()
    settings = config.settings("amqp_queue")
    assert isinstance(settings, AmqpSettings)
    return settings


def test_defaults_are_conductors(plugins: PluginHost, tmp_path: Path) -> None:
    settings = queue_settings(load(plugins, tmp_path, ""))
    assert settings.enabled is False
    assert settings.hosts == "localhost"
    assert settings.port == 5672
    assert settings.username == "guest"
    assert settings.password.get_secret_value() == "guest"
    assert settings.virtual_host == "/"
    assert settings.use_ssl_protocol is False
    assert settings.batch_size == 1
    assert settings.poll_time_duration == timedelta(milliseconds=100)
    assert settings.network_recovery_interval_in_milli_secs == 5000
    assert settings.request_heartbeat_timeout_in_secs == 30
    assert (settings.durable, settings.exclusive, settings.auto_delete) == (True, False, False)
    assert settings.content_type == "application/json"
    assert settings.content_encoding == "UTF-8"
    assert settings.exchange_type == "topic"
    assert settings.queue_type == "classic"
    assert settings.delivery_mode == 2
    assert settings.duration == timedelta(seconds=1)
    assert settings.type is RetryType.REGULARINTERVALS
    # safer than Conductor's: a bounded connect, a few publish retries, dead letters
    assert settings.connection_timeout_in_milli_secs == 10_000
    assert settings.limit == 3
    assert settings.max_deliveries == 5


def test_a_conductor_properties_file_configures_both_types(
    plugins: PluginHost, tmp_path: Path
) -> None:
    config = load(
        plugins,
        tmp_path,
        f"{AMQP}.enabled=true\n"
        f"{AMQP}.hosts=rabbit-1:5673, rabbit-2\n"
        f"{AMQP}.virtualHost=orders\n"  # Spring's relaxed binding
        f"{AMQP}.batch-size=20\n"
        f"{AMQP}.poll-time-duration=250\n"  # bare number: milliseconds
        f"{AMQP}.type=EXPONENTIALBACKOFF\n"
        f"{AMQP}.durable=false\n"
        f"{AMQP}.delivery-mode=1\n"
        f"{AMQP}.exchange-type=fanout\n",
    )
    assert config.problems == []
    settings = queue_settings(config)
    assert settings.enabled is True
    assert settings.addresses() == [("rabbit-1", 5673), ("rabbit-2", 5672)]
    assert settings.virtual_host == "orders"
    assert settings.batch_size == 20
    assert settings.poll_time_duration == timedelta(milliseconds=250)
    assert [settings.retry_wait(i) for i in (1, 2, 3)] == [2.0, 4.0, 8.0]
    assert settings.durable is False
    assert settings.delivery_mode == 1
    assert settings.exchange_type == "fanout"
    assert config.settings("amqp_exchange") == settings
    assert config.enabled("amqp_queue")
    assert config.enabled("amqp_exchange")


def test_one_enabled_key_switches_both_types(plugins: PluginHost, tmp_path: Path) -> None:
    config = load(plugins, tmp_path, f"{AMQP}.hosts=rabbit\n")
    assert not config.enabled("amqp_queue")
    assert not config.enabled("amqp_exchange")
    config = load(plugins, tmp_path, f"{AMQP}.enabled=true\n")
    assert config.enabled("amqp_queue")
    assert config.enabled("amqp_exchange")


def test_a_key_under_a_type_name_points_to_the_amqp_section(
    plugins: PluginHost, tmp_path: Path
) -> None:
    config = load(
        plugins,
        tmp_path,
        "conductor.event-queues.amqp_queue.hosts=rabbit\n"
        "conductor.event-queues.amqpExchange.enabled=true\n",
    )
    assert [(p.source and p.source.line, p.key, p.message) for p in config.warnings] == [
        (
            1,
            "conductor.event-queues.amqp_queue.hosts",
            f"queue type 'amqp_queue' reads its settings from {AMQP}; did you mean '{AMQP}.hosts'?",
        ),
        (
            2,
            "conductor.event-queues.amqpExchange.enabled",
            f"queue type 'amqp_exchange' reads its settings from {AMQP}; "
            f"did you mean '{AMQP}.enabled'?",
        ),
    ]
    assert config.errors == []
    assert queue_settings(config).hosts == "localhost"  # nothing bound
    assert not config.enabled("amqp_exchange")


def test_each_problem_of_the_section_is_reported_once(plugins: PluginHost, tmp_path: Path) -> None:
    config = load(plugins, tmp_path, f"{AMQP}.port=0\n{AMQP}.virtual-hots=x\n")
    assert [problem.key for problem in config.errors] == [f"{AMQP}.port"]
    assert [problem.key for problem in config.warnings] == [f"{AMQP}.virtual-hots"]
    assert config.settings("amqp_queue") is None
    assert config.settings("amqp_exchange") is None


def test_retry_waits_follow_conductors_patterns() -> None:
    step = timedelta(milliseconds=100)
    regular = AmqpSettings(duration=step)
    incremental = AmqpSettings(duration=step, type=RetryType.INCREMENTALINTERVALS)
    assert [regular.retry_wait(i) for i in (1, 2, 3)] == [0.1, 0.1, 0.1]
    assert [round(incremental.retry_wait(i), 3) for i in (1, 2, 3)] == [0.1, 0.2, 0.3]


def test_spring_environment_variables_override(plugins: PluginHost, tmp_path: Path) -> None:
    config = load(
        plugins,
        tmp_path,
        f"{AMQP}.hosts=from-file\n",
        CONDUCTOR_EVENTQUEUES_AMQP_HOSTS="from-env",
        CONDUCTOR_EVENTQUEUES_AMQP_PASSWORD="env-Secret-9",
        CONDUCTOR_EVENTQUEUES_AMQP_ENABLED="true",
    )
    settings = queue_settings(config)
    assert settings.hosts == "from-env"
    assert settings.password.get_secret_value() == "env-Secret-9"
    assert config.enabled("amqp_exchange")
    assert config.entries[f"{AMQP}.hosts"].source.env == "CONDUCTOR_EVENTQUEUES_AMQP_HOSTS"


@pytest.mark.parametrize(
    ("line", "key", "words"),
    [
        (f"{AMQP}.delivery-mode=3", f"{AMQP}.delivery-mode", "1 (transient) or 2"),
        (f"{AMQP}.hosts=rabbit:http", f"{AMQP}.hosts", "port after ':'"),
        (f"{AMQP}.hosts= , ", f"{AMQP}.hosts", "host:port"),
        (f"{AMQP}.queue-type=stream", f"{AMQP}.queue-type", "classic"),
        (f"{AMQP}.type=SOMETIMES", f"{AMQP}.type", "REGULARINTERVALS"),
        (f"{AMQP}.port=0", f"{AMQP}.port", "greater than or equal to 1"),
    ],
)
def test_bad_values_are_reported_with_key_and_line(
    plugins: PluginHost, tmp_path: Path, line: str, key: str, words: str
) -> None:
    config = load(plugins, tmp_path, f"# first\n{line}\n")
    (problem,) = config.errors
    text = str(problem)
    assert text.startswith(f"{tmp_path / 'app.properties'}:2: {key}: ")
    assert words in text
    assert "conductor-events-amqp" in text


def test_an_unknown_key_gets_a_did_you_mean(plugins: PluginHost, tmp_path: Path) -> None:
    config = load(plugins, tmp_path, f"{AMQP}.virtual-hots=orders\n")
    (problem,) = config.warnings
    assert f"did you mean '{AMQP}.virtual-host'" in str(problem)


def test_the_password_is_never_shown(plugins: PluginHost, tmp_path: Path) -> None:
    config = load(plugins, tmp_path, f"{AMQP}.password=s3cr3t-Value-Do-Not-Show\n")
    settings = queue_settings(config)
    assert "s3cr3t" not in repr(settings)
    assert "s3cr3t" not in str(settings.summary())
    shown = "\n".join(show_lines(effective_entries(config, plugins)))
    assert f"{AMQP}.password" in shown
    assert "s3cr3t" not in shown
