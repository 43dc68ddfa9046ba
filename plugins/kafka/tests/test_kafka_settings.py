"""``conductor.event-queues.kafka.*`` as bound from properties files and the environment, and
the raw client maps translated to aiokafka's arguments."""

from __future__ import annotations

import importlib.metadata
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from conductor_events_kafka import options
from conductor_events_kafka.plugin import connect
from conductor_events_kafka.settings import KafkaSettings

from conductor_events.config import Configuration, load_configuration
from conductor_events.config.show import effective_entries
from conductor_events.errors import ConfigError
from conductor_events.plugins import PluginHost
from conductor_events.testing.plugin_checks import sdk_import_report

PREFIX = "conductor.event-queues.kafka"


def load(plugins: PluginHost, tmp_path: Path, text: str, **environ: str) -> Configuration:
    path = tmp_path / "app.properties"
    path.write_text(text, encoding="utf-8")
    return load_configuration([path], plugins, environ)


def kafka(config: Configuration) -> KafkaSettings:
    config.raise_for_errors()
    settings = config.settings("kafka")
    assert isinstance(settings, KafkaSettings)
    return settings


def test_defaults_are_conductors_and_safe(plugins: PluginHost, tmp_path: Path) -> None:
    settings = kafka(load(plugins, tmp_path, f"{PREFIX}.enabled=true\n"))
    assert settings.bootstrap_servers == "kafka:29092"
    assert settings.dlq_topic == "conductor-dlq"
    assert settings.poll_time_duration == timedelta(milliseconds=100)
    assert settings.listener_queue_prefix == ""
    assert settings.group_for("orders") == "conductor-group"
    producer = options.translate(settings, "producer").kwargs
    assert producer["acks"] == "all"
    assert producer["enable_idempotence"] is True
    consumer = options.translate(settings, "consumer").kwargs
    assert consumer["enable_auto_commit"] is False
    assert consumer["auto_offset_reset"] == "earliest"


def test_a_conductor_properties_file_binds_and_translates(
    plugins: PluginHost, tmp_path: Path
) -> None:
    text = textwrap.dedent(
        f"""\
        {PREFIX}.enabled=true
        {PREFIX}.bootstrapServers=broker-1:9092, broker-2:9092
        {PREFIX}.dlq-topic={{topic}}.dlq
        {PREFIX}.poll-time-duration=500
        {PREFIX}.consumer.group.id=handlers-{{topic}}
        {PREFIX}.consumer.auto.offset.reset=latest
        {PREFIX}.consumer.session.timeout.ms=6000
        {PREFIX}.producer.acks=1
        {PREFIX}.producer.linger.ms=5
        {PREFIX}.producer.compression.type=gzip
        {PREFIX}.producer.enable.idempotence=false
        {PREFIX}.producer.security.protocol=SASL_PLAINTEXT
        {PREFIX}.producer.sasl.mechanism=PLAIN
        {PREFIX}.producer.sasl.plain.username=app
        {PREFIX}.producer.sasl.plain.password=s3cret
        {PREFIX}.admin.client.id=admin-client
        """
    )
    settings = kafka(load(plugins, tmp_path, text))
    assert settings.bootstrap_servers == "broker-1:9092,broker-2:9092"
    assert settings.poll_time_duration == timedelta(milliseconds=500)
    assert settings.dlq_topic_for("orders") == "orders.dlq"
    assert settings.group_for("orders") == "handlers-orders"
    assert settings.group_for("orders", "mine") == "mine"
    producer = options.translate(settings, "producer").kwargs
    assert producer == {
        "bootstrap_servers": "broker-1:9092,broker-2:9092",
        "acks": 1,
        "linger_ms": 5,
        "compression_type": "gzip",
        "enable_idempotence": False,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "app",
        "sasl_plain_password": "s3cret",
    }
    consumer = options.translate(settings, "consumer").kwargs
    assert consumer["auto_offset_reset"] == "latest"
    assert consumer["session_timeout_ms"] == 6000
    assert "group_id" not in consumer, "the group is chosen per subscription"
    assert options.translate(settings, "admin").kwargs["client_id"] == "admin-client"


def test_environment_overrides_in_springs_form(plugins: PluginHost, tmp_path: Path) -> None:
    settings = kafka(
        load(
            plugins,
            tmp_path,
            f"{PREFIX}.enabled=true\n{PREFIX}.dlq-topic=from-file\n",
            CONDUCTOR_EVENTQUEUES_KAFKA_DLQTOPIC="from-env",
            CONDUCTOR_EVENTQUEUES_KAFKA_BOOTSTRAPSERVERS="env-broker:9092",
        )
    )
    assert settings.dlq_topic == "from-env"
    assert settings.bootstrap_servers == "env-broker:9092"


def test_an_unknown_producer_key_is_an_error_with_a_did_you_mean(
    plugins: PluginHost, tmp_path: Path
) -> None:
    config = load(plugins, tmp_path, f"{PREFIX}.enabled=true\n{PREFIX}.producer.linger.msec=5\n")
    (problem,) = [str(p) for p in config.errors]
    assert problem.startswith(f"{tmp_path / 'app.properties'}:2: {PREFIX}.producer.linger.msec: ")
    assert "did you mean 'producer.linger.ms'?" in problem
    assert problem.endswith("(plugin conductor-events-kafka 0.1.0)")
    with pytest.raises(ConfigError, match=r"linger\.msec"):
        connect(KafkaSettings(enabled=True, producer={"linger.msec": "5"}))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("producer.acks=2", "expected all, -1, 0 or 1"),
        ("producer.linger.ms=soon", "expected a whole number"),
        ("consumer.enable.auto.commit=true", "must be false"),
        ("consumer.auto.offset.reset=oldest", "expected one of earliest, latest, none"),
        ("admin.security.protocol=TLS", "expected one of PLAINTEXT"),
    ],
)
def test_bad_client_values_name_the_key_and_line(
    plugins: PluginHost, tmp_path: Path, line: str, message: str
) -> None:
    config = load(plugins, tmp_path, f"{PREFIX}.enabled=true\n{PREFIX}.{line}\n")
    (problem,) = [str(p) for p in config.errors]
    key = line.split("=", 1)[0]
    assert f":2: {PREFIX}.{key}: " in problem
    assert message in problem


def test_every_problem_of_the_section_is_reported_with_its_line(
    plugins: PluginHost, tmp_path: Path
) -> None:
    """A field the model refuses does not hide the client-map checks of the same section."""
    config = load(
        plugins,
        tmp_path,
        f"{PREFIX}.enabled=true\n{PREFIX}.producer.acks=2\n{PREFIX}.max-deliveries=abc\n",
    )
    file = tmp_path / "app.properties"
    assert [str(p) for p in config.errors] == [
        f"{file}:2: {PREFIX}.producer.acks: expected all, -1, 0 or 1, got '2' "
        "(plugin conductor-events-kafka 0.1.0)",
        f"{file}:3: {PREFIX}.max-deliveries: invalid value 'abc': Input should be a valid "
        "integer, unable to parse string as an integer (plugin conductor-events-kafka 0.1.0)",
    ]


def test_an_unknown_section_key_gets_a_did_you_mean(plugins: PluginHost, tmp_path: Path) -> None:
    config = load(plugins, tmp_path, f"{PREFIX}.dlq-topik=x\n")
    (problem,) = [str(p) for p in config.warnings]
    assert f"did you mean '{PREFIX}.dlq-topic'" in problem


def test_secrets_are_masked(plugins: PluginHost, tmp_path: Path) -> None:
    config = load(
        plugins,
        tmp_path,
        f"{PREFIX}.enabled=true\n{PREFIX}.consumer.sasl.plain.password=hunter2\n"
        f"{PREFIX}.producer.ssl.password=keypass\n{PREFIX}.consumer.sasl.plain.username=app\n"
        f"{PREFIX}.consumer.client.id=c1\n",
    )
    shown = {e.key: e.display_value for e in effective_entries(config, plugins)}
    assert shown[f"{PREFIX}.consumer.sasl.plain.password"] == "******"
    assert shown[f"{PREFIX}.producer.ssl.password"] == "******"
    assert shown[f"{PREFIX}.consumer.sasl.plain.username"] == "app"
    assert all("hunter2" not in str(problem) for problem in config.problems)
    settings = kafka(config)
    for shown_as in (repr(settings), str(settings), repr(config), str(settings.summary())):
        assert "hunter2" not in shown_as
        assert "keypass" not in shown_as
        assert "'sasl.plain.password': '******'" in shown_as
        assert "'sasl.plain.username': 'app'" in shown_as
    assert settings.consumer["sasl.plain.password"] == "hunter2"  # the client still gets it


def test_every_raw_name_translates_to_an_aiokafka_argument() -> None:
    """Each target is a real keyword of the aiokafka client it configures."""
    import inspect

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # type: ignore[import-untyped]
    from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]

    classes = {
        "consumer": AIOKafkaConsumer,
        "producer": AIOKafkaProducer,
        "admin": AIOKafkaAdminClient,
    }
    for role, table in options.OPTIONS.items():
        accepted = set(inspect.signature(classes[role]).parameters)
        for name, option in table.items():
            if option.target is None or option.target.startswith("ssl:"):
                continue
            assert option.target in accepted, f"{role}.{name} -> {option.target}"
        assert "ssl_context" in accepted


def test_loading_the_plugin_does_not_import_aiokafka() -> None:
    report = sdk_import_report(
        "conductor_events_kafka.plugin",
        ["aiokafka"],
        sink="kafka:orders",  # first use of a kafka topic: connect
        properties={"conductor.event-queues.kafka.enabled": "true"},
    )
    assert report.queue_types == ["kafka"]
    assert report.at_load == []
    assert "aiokafka" in report.after_use


def test_entry_point_is_declared() -> None:
    (point,) = importlib.metadata.entry_points(group="conductor_events", name="kafka")
    assert point.value == "conductor_events_kafka.plugin"
    assert point.dist is not None
    assert point.dist.metadata["Name"] == "conductor-events-kafka"


def test_registers_the_kafka_type(plugins: PluginHost) -> None:
    registered = plugins.queue_type("kafka")
    assert registered is not None
    assert registered.plugin.distribution == "conductor-events-kafka"
    assert registered.queue_type.settings.section == PREFIX
    assert "validate_config" in registered.plugin.hooks
