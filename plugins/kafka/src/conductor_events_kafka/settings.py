"""``conductor.event-queues.kafka.*``: Conductor's keys with its defaults, plus what it lacked.

Imports pydantic and the core only, so loading the plugin stays cheap. The raw client maps
(``consumer.*``, ``producer.*``, ``admin.*``) take Kafka's own config names; they are checked
and translated to aiokafka's arguments by :mod:`conductor_events_kafka.options`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from conductor_events.config import Millis, PositiveMillis, PositiveSeconds, QueueSettings

DEFAULT_GROUP = "conductor-group"
"""Conductor's consumer group when neither ``consumer.group.id`` nor the listener names one."""

_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


def check_topic_name(name: str) -> str | None:
    """Why ``name`` is not a valid Kafka topic name, or ``None`` when it is."""
    if name in {".", ".."}:
        return f"{name!r} is not a valid Kafka topic name"
    if not _TOPIC.match(name):
        return f"invalid Kafka topic name {name!r}: use 1 to 249 letters, digits, '.', '_' or '-'"
    return None


class KafkaSettings(QueueSettings):
    """Apache Kafka (and Kafka-protocol brokers such as Redpanda or tansu), through aiokafka.

    Defaults are safe for at-least-once delivery: ``acks=all``, idempotent producers, and
    offsets committed by the plugin only after a message is acked (never auto-committed).
    """

    section: ClassVar[str] = "conductor.event-queues.kafka"

    enabled: bool = Field(default=False, description="Use the `kafka` queue type.")
    bootstrap_servers: str = Field(
        default="kafka:29092",
        min_length=1,
        description="Comma-separated `host:port` list of brokers to bootstrap from "
        "(Conductor's default is `kafka:29092`); used by the consumer, producer and admin "
        "clients unless their own map sets `bootstrap.servers`.",
    )
    dlq_topic: str = Field(
        default="conductor-dlq",
        min_length=1,
        description="Topic that dead-lettered records go to, with headers naming the original "
        "topic, partition, offset and the reason. `{topic}` stands for the source topic, so "
        "`{topic}.dlq` gives each topic its own.",
    )
    poll_time_duration: PositiveMillis = Field(
        default=timedelta(milliseconds=100),
        description="Longest wait of one fetch from the broker when no records are ready "
        "(Conductor's `consumer.poll` timeout). Bare numbers are milliseconds.",
    )
    listener_queue_prefix: str = Field(
        default="",
        description="Prefix of Conductor's default listener topics `<prefix>COMPLETED` and "
        "`<prefix>FAILED`.",
    )
    max_deliveries: int = Field(
        default=5,
        ge=1,
        description="Deliveries of one record before a nack sends it to `dlq-topic` instead "
        "of redelivering it. Counted by the consumer holding the partition: a rebalance or "
        "restart starts the count again.",
    )
    payload_format: Literal["value", "conductor"] = Field(
        default="value",
        description="`value`: the payload is the record value (JSON when it parses, else the "
        'text). `conductor`: Conductor\'s shape `{"key", "headers", "payload"}`, so '
        "Conductor handler definitions using `${payload.x}` work unchanged.",
    )
    create_topics: bool = Field(
        default=True,
        description="Let the broker create a missing topic on first use (when the broker "
        "allows auto-creation). `false` makes publishing to or subscribing to a missing topic "
        "an error, checked without creating it.",
    )
    max_message_size: int = Field(
        default=1_000_000,
        ge=1,
        description="Largest encoded payload, in bytes, a publish accepts; larger messages "
        "fail one by one, with a reason. Keep it below the broker's `message.max.bytes` and "
        "`producer.max.request.size`.",
    )
    commit_interval: Millis = Field(
        default=timedelta(milliseconds=100),
        description="Pause between the starts of two offset commits while acks arrive: acks "
        "in between are committed together, so an ack is committed about this long after it "
        "(a crash replays about this much). Offsets are also committed on close and before a "
        "rebalance takes partitions away. Bare numbers are milliseconds.",
    )
    connect_timeout: PositiveSeconds = Field(
        default=timedelta(seconds=10),
        description="Bound on connecting to the bootstrap servers: an unreachable cluster "
        "fails within it. A subscribe also waits up to this long for the group to assign "
        "partitions, then returns and goes on joining in the background. Bare numbers are "
        "seconds.",
    )
    consumer: dict[str, str] = Field(
        default_factory=dict,
        description="Kafka consumer configs by their Kafka names (`group.id`, "
        "`auto.offset.reset`, `session.timeout.ms`, `security.protocol`, ...), translated to "
        "aiokafka arguments. Defaults: `group.id=conductor-group` (`{topic}` in it stands "
        "for the topic, e.g. `conductor-{topic}` for a group per topic), "
        "`auto.offset.reset=earliest`, `enable.auto.commit=false` (required).",
    )
    producer: dict[str, str] = Field(
        default_factory=dict,
        description="Kafka producer configs by their Kafka names (`acks`, "
        "`enable.idempotence`, `linger.ms`, `compression.type`, `batch.size`, ...). "
        "Defaults: `acks=all`, `enable.idempotence=true`.",
    )
    admin: dict[str, str] = Field(
        default_factory=dict,
        description="Kafka admin client configs by their Kafka names (`client.id`, "
        "`request.timeout.ms`, `security.protocol`, ...); the admin client checks topics.",
    )

    @field_validator("bootstrap_servers")
    @classmethod
    def _check_servers(cls, value: str) -> str:
        servers = [part.strip() for part in value.split(",") if part.strip()]
        if not servers:
            raise ValueError("expected a comma-separated list of host:port")
        return ",".join(servers)

    @field_validator("dlq_topic")
    @classmethod
    def _check_dlq_topic(cls, value: str) -> str:
        problem = check_topic_name(value.replace("{topic}", "t"))
        if problem is not None:
            raise ValueError(problem)
        return value

    def dlq_topic_for(self, topic: str) -> str:
        """The dead-letter topic of records read from ``topic``."""
        return self.dlq_topic.replace("{topic}", topic)

    def group_for(self, topic: str, group: str | None = None) -> str:
        """The consumer group of a listener on ``topic``: its own, else ``consumer.group.id``,
        else Conductor's ``conductor-group``; ``{topic}`` stands for the topic."""
        chosen = group or self.consumer.get("group.id") or DEFAULT_GROUP
        return chosen.replace("{topic}", topic)
