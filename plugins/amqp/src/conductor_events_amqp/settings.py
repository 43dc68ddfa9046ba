"""``conductor.event-queues.amqp.*``: Conductor's AMQP keys with its defaults (where they are
safe), plus what it lacked (dead letters, attempt limits, size limits).

As in Conductor, the one section configures both AMQP queue types, ``amqp_queue`` and
``amqp_exchange``: both register this model, so the core validates the section once and its
``enabled`` key switches both (see docs/amqp.md, "Configuration").

Imports pydantic and the core only, so loading the plugin stays cheap.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import Field, SecretStr, field_validator

from conductor_events.config import PositiveMillis, QueueSettings

DEFAULT_PORT = 5672
QUEUE_TYPE = "amqp_queue"
EXCHANGE_TYPE = "amqp_exchange"
SECTION = "conductor.event-queues.amqp"


class RetryType(StrEnum):
    """Conductor's ``AMQPRetryPattern`` kinds: the wait before retry ``i`` (from 1)."""

    REGULARINTERVALS = "REGULARINTERVALS"
    INCREMENTALINTERVALS = "INCREMENTALINTERVALS"
    EXPONENTIALBACKOFF = "EXPONENTIALBACKOFF"


class AmqpSettings(QueueSettings):
    """RabbitMQ (AMQP 0-9-1), through aio-pika. One robust connection per queue type, which
    reconnects by itself after a broker restart; publishes are confirmed by the broker."""

    section: ClassVar[str] = SECTION

    enabled: bool = Field(
        default=False, description="Use the `amqp_queue` and `amqp_exchange` queue types."
    )
    hosts: str = Field(
        default="localhost",
        min_length=1,
        description="Comma-separated `host` or `host:port` list; the first that accepts a "
        "connection is used (a host without a port uses `port`).",
    )
    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535, description="Broker port.")
    username: str = Field(default="guest", min_length=1, description="User name.")
    password: SecretStr = Field(
        default=SecretStr("guest"),
        description="Password; never logged or shown.",
    )
    virtual_host: str = Field(default="/", min_length=1, description="Virtual host.")
    use_ssl_protocol: bool = Field(
        default=False,
        description="Connect with TLS (`amqps`), verifying the broker's certificate against "
        "the system's trusted authorities (Conductor trusted every certificate).",
    )
    batch_size: int = Field(
        default=1,
        ge=1,
        le=65535,
        description="Lowest prefetch (QoS) of a consumer. A subscription asks the broker for "
        "its `max_in_flight` plus `prefetch` unacked messages when that is more.",
    )
    poll_time_duration: PositiveMillis = Field(
        default=timedelta(milliseconds=100),
        description="Longest wait of one fetch from a consumer's buffer when nothing has "
        "arrived; bounds how quickly a subscription notices it is closed. Bare numbers are "
        "milliseconds.",
    )
    connection_timeout_in_milli_secs: int = Field(
        default=10_000,
        ge=1,
        description="Bound, in milliseconds, on opening a connection (per host), and on a "
        "publish confirmation or a declaration. Conductor's default of 180000 would hold an "
        "EVENT task for three minutes when the broker is unreachable.",
    )
    network_recovery_interval_in_milli_secs: int = Field(
        default=5_000,
        ge=1,
        description="Wait, in milliseconds, between reconnection attempts after the "
        "connection was lost; consumers and their declarations are restored after it.",
    )
    request_heartbeat_timeout_in_secs: int = Field(
        default=30,
        ge=0,
        le=65535,
        description="Heartbeat interval asked of the broker, in seconds (0 turns heartbeats off).",
    )
    limit: int = Field(
        default=3,
        ge=0,
        le=100,
        description="Retries of a publish that failed because the connection or channel was "
        "lost (Conductor's retry pattern; its default is 50). A publish the broker refused "
        "(nack, unroutable) is not retried.",
    )
    duration: PositiveMillis = Field(
        default=timedelta(milliseconds=1000),
        description="Base wait between publish retries; see `type`. Bare numbers are milliseconds.",
    )
    type: RetryType = Field(
        default=RetryType.REGULARINTERVALS,
        description="How the wait grows: `REGULARINTERVALS` (`duration` each time), "
        "`INCREMENTALINTERVALS` (`duration` x retry number), `EXPONENTIALBACKOFF` "
        "(`duration` x 2^retry number).",
    )
    durable: bool = Field(
        default=True,
        description="Declare queues and exchanges durable (location parameter `durable` "
        "overrides).",
    )
    exclusive: bool = Field(
        default=False,
        description="Declare queues exclusive to their connection (location parameter "
        "`exclusive` overrides).",
    )
    auto_delete: bool = Field(
        default=False,
        description="Declare queues and exchanges auto-deleted when their last consumer or "
        "binding goes (location parameter `autoDelete` overrides).",
    )
    content_type: str = Field(
        default="application/json", description="`content_type` property of published messages."
    )
    content_encoding: str = Field(
        default="UTF-8", description="`content_encoding` property of published messages."
    )
    exchange_type: Literal["direct", "fanout", "topic", "headers"] = Field(
        default="topic",
        description="Type of the exchanges `amqp_exchange` declares (location parameter "
        "`exchangeType` overrides).",
    )
    queue_type: Literal["classic", "quorum"] = Field(
        default="classic",
        description="`x-queue-type` of the queues the plugin declares. Quorum queues count "
        "redeliveries on the broker (`x-delivery-count`).",
    )
    delivery_mode: int = Field(
        default=2,
        description="`delivery_mode` of published messages: 2 persistent, 1 transient "
        "(location parameter `deliveryMode` overrides).",
    )
    max_deliveries: int = Field(
        default=5,
        ge=1,
        description="Deliveries of one message before a nack moves it to its dead-letter "
        "queue `<queue>.dlq` instead of redelivering it.",
    )
    dead_letter_suffix: str = Field(
        default=".dlq",
        min_length=1,
        description="Suffix of each queue's dead-letter queue name (`orders` -> `orders.dlq`).",
    )
    max_message_size: int = Field(
        default=16 * 1024 * 1024,
        ge=1,
        description="Largest encoded payload, in bytes, a publish accepts; larger messages "
        "fail one by one, with a reason. Keep it at most the broker's `max_message_size` "
        "(128 MiB before RabbitMQ 4.0, 16 MiB since).",
    )

    @field_validator("hosts")
    @classmethod
    def _check_hosts(cls, value: str) -> str:
        hosts = [part.strip() for part in value.split(",") if part.strip()]
        if not hosts:
            raise ValueError("expected a comma-separated list of host or host:port")
        for host in hosts:
            _, sep, port = host.rpartition(":")
            if sep and not (port.isdigit() and 1 <= int(port) <= 65535):
                raise ValueError(f"{host!r}: the port after ':' must be a number 1-65535")
        return ",".join(hosts)

    @field_validator("delivery_mode")
    @classmethod
    def _check_delivery_mode(cls, value: int) -> int:
        if value not in (1, 2):
            raise ValueError(f"must be 1 (transient) or 2 (persistent), not {value}")
        return value

    def addresses(self) -> list[tuple[str, int]]:
        """The ``hosts`` as (host, port) pairs, in order."""
        found = []
        for host in self.hosts.split(","):
            name, sep, port = host.rpartition(":")
            found.append((name, int(port)) if sep else (host, self.port))
        return found

    @property
    def timeout(self) -> float:
        return self.connection_timeout_in_milli_secs / 1000

    def retry_wait(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (from 1) of a publish."""
        base = self.duration.total_seconds()
        if self.type is RetryType.INCREMENTALINTERVALS:
            return base * retry
        if self.type is RetryType.EXPONENTIALBACKOFF:
            return base * float(2**retry)
        return base
