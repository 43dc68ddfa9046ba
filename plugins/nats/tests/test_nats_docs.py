"""docs/nats.md documents every ``conductor.event-queues.nats.*`` and ``jsm.*`` key, as the code
defines them, and says that core NATS is at most once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conductor_events_nats.settings import JetStreamSettings, NatsSettings

from conductor_events.config.binding import known_keys
from conductor_events.config.settings import QueueSettings
from conductor_events.testing.plugin_checks import assert_key_table_current, generated_block

DOC = Path(__file__).resolve().parents[3] / "docs" / "nats.md"
MODELS = [("nats", NatsSettings), ("jsm", JetStreamSettings)]


@pytest.mark.parametrize(("queue_type", "model"), MODELS)
def test_the_key_table_is_current(queue_type: str, model: type[QueueSettings]) -> None:
    assert_key_table_current(DOC, queue_type, model)


@pytest.mark.parametrize(("queue_type", "model"), MODELS)
def test_every_key_is_documented_in_order(queue_type: str, model: type[QueueSettings]) -> None:
    body = generated_block(DOC, f"config:{queue_type}")
    prefix = re.escape(model.section)
    documented = re.findall(rf"^\| `({prefix}\.[a-z0-9.-]+)` \| `([^`]*)`", body, re.M)
    assert [key for key, _ in documented] == [
        f"{model.section}.{suffix}" for suffix, _ in known_keys(model)
    ]


def test_conductor_defaults_are_documented() -> None:
    defaults = dict(
        re.findall(
            r"^\| `(conductor\.event-queues\.jsm\.[a-z0-9.-]+)` \| `([^`]*)`",
            generated_block(DOC, "config:jsm"),
            re.M,
        )
    )
    section = JetStreamSettings.section
    assert defaults[f"{section}.durable-name"] == "defaultQueue"
    assert defaults[f"{section}.ack-wait"] == "1m"
    assert defaults[f"{section}.max-deliver"] == "5"
    assert defaults[f"{section}.max-ack-pending"] == "100"


def test_the_core_type_is_documented_as_at_most_once() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert "at most once" in text
