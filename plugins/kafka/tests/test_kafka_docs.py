"""docs/kafka.md documents every ``conductor.event-queues.kafka.*`` key and every raw client
setting name, as the code defines them."""

from __future__ import annotations

import re
from pathlib import Path

from conductor_events_kafka import options
from conductor_events_kafka.settings import KafkaSettings

from conductor_events.config.binding import known_keys
from conductor_events.testing.plugin_checks import assert_key_table_current, generated_block

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "kafka.md"
README = Path(__file__).resolve().parents[1] / "README.md"


def block() -> str:
    return generated_block(DOC, "config:kafka")


def test_every_key_is_documented_with_its_default() -> None:
    body = block()
    documented = re.findall(
        r"^\| `(conductor\.event-queues\.kafka\.[a-z0-9.-]+?)(?:\.\*)?` \| `([^`]*)`", body, re.M
    )
    keys = [f"{KafkaSettings.section}.{suffix}" for suffix, _ in known_keys(KafkaSettings)]
    assert [key for key, _ in documented] == keys
    defaults = dict(documented)
    assert defaults[f"{KafkaSettings.section}.dlq-topic"] == "conductor-dlq"
    assert defaults[f"{KafkaSettings.section}.poll-time-duration"] == "100ms"
    assert defaults[f"{KafkaSettings.section}.bootstrap-servers"] == "kafka:29092"


def test_the_key_table_is_current() -> None:
    assert_key_table_current(DOC, "kafka", KafkaSettings)


def test_every_raw_client_setting_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for role, table in options.OPTIONS.items():
        for name in table:
            assert f"`{name}`" in text, f"docs/kafka.md does not mention {role}.{name}"


def test_readme_points_to_the_docs_and_names_the_tansu_limits() -> None:
    readme = README.read_text(encoding="utf-8")
    assert "docs/kafka.md" in readme
    assert "enable.idempotence=false" in readme
