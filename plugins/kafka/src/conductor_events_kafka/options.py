"""Kafka's config names (``linger.ms``, ``group.id``) checked and translated to aiokafka's
keyword arguments (``linger_ms``, ``group_id``).

Imports no aiokafka: the values are plain Python; :mod:`conductor_events_kafka.client` turns the
TLS settings into an ``ssl.SSLContext`` and the assignment strategies into classes.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from conductor_events_kafka.settings import KafkaSettings

Role = Literal["consumer", "producer", "admin"]

Converter = Callable[[str], Any]


def _int(value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise ValueError(f"expected a whole number, got {value!r}") from None


def _bool(value: str) -> bool:
    text = value.strip().lower()
    if text in {"true", "false"}:
        return text == "true"
    raise ValueError(f"expected true or false, got {value!r}")


def _text(value: str) -> str:
    return value.strip()


def _choice(*allowed: str) -> Converter:
    def convert(value: str) -> str:
        text = value.strip()
        if text not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {value!r}")
        return text

    return convert


def _acks(value: str) -> int | str:
    text = value.strip().lower()
    if text in {"all", "-1"}:
        return "all"
    if text in {"0", "1"}:
        return int(text)
    raise ValueError(f"expected all, -1, 0 or 1, got {value!r}")


def _compression(value: str) -> str | None:
    text = _choice("none", "gzip", "snappy", "lz4", "zstd")(value)
    return None if text == "none" else text


def _strategies(value: str) -> tuple[str, ...]:
    known = {
        "range": "range",
        "org.apache.kafka.clients.consumer.rangeassignor": "range",
        "roundrobin": "roundrobin",
        "org.apache.kafka.clients.consumer.roundrobinassignor": "roundrobin",
        "sticky": "sticky",
        "org.apache.kafka.clients.consumer.stickyassignor": "sticky",
    }
    names = []
    for part in value.split(","):
        name = known.get(part.strip().lower())
        if name is None:
            raise ValueError(f"unknown assignment strategy {part.strip()!r} (range, roundrobin)")
        names.append(name)
    return tuple(names)


@dataclass(frozen=True, slots=True)
class Option:
    """One Kafka config name: the aiokafka argument it becomes and how its value converts.

    ``target`` ``None`` marks a name accepted for compatibility that has no effect here.
    """

    target: str | None
    convert: Converter = _text
    note: str = ""


_COMMON: dict[str, Option] = {
    "bootstrap.servers": Option("bootstrap_servers"),
    "client.id": Option("client_id"),
    "request.timeout.ms": Option("request_timeout_ms", _int),
    "retry.backoff.ms": Option("retry_backoff_ms", _int),
    "metadata.max.age.ms": Option("metadata_max_age_ms", _int),
    "connections.max.idle.ms": Option("connections_max_idle_ms", _int),
    "security.protocol": Option(
        "security_protocol", _choice("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
    ),
    "sasl.mechanism": Option(
        "sasl_mechanism",
        _choice("PLAIN", "GSSAPI", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"),
    ),
    "sasl.plain.username": Option("sasl_plain_username"),
    "sasl.plain.password": Option("sasl_plain_password"),
    "sasl.kerberos.service.name": Option("sasl_kerberos_service_name"),
    "sasl.kerberos.domain.name": Option("sasl_kerberos_domain_name"),
    # TLS: collected into one ssl.SSLContext by the client.
    "ssl.cafile": Option("ssl:cafile"),
    "ssl.certfile": Option("ssl:certfile"),
    "ssl.keyfile": Option("ssl:keyfile"),
    "ssl.password": Option("ssl:password"),
    "ssl.check.hostname": Option("ssl:check_hostname", _bool),
}

_SERIALIZERS = "the plugin encodes records itself (UTF-8 JSON values, UTF-8 string keys)"

_PRODUCER: dict[str, Option] = {
    **_COMMON,
    "acks": Option("acks", _acks),
    "enable.idempotence": Option("enable_idempotence", _bool),
    "linger.ms": Option("linger_ms", _int),
    "compression.type": Option("compression_type", _compression),
    "batch.size": Option("max_batch_size", _int),
    "max.request.size": Option("max_request_size", _int),
    "key.serializer": Option(None, note=_SERIALIZERS),
    "value.serializer": Option(None, note=_SERIALIZERS),
}

_CONSUMER: dict[str, Option] = {
    **_COMMON,
    "group.id": Option("group_id"),
    "group.instance.id": Option("group_instance_id"),
    "auto.offset.reset": Option("auto_offset_reset", _choice("earliest", "latest", "none")),
    "enable.auto.commit": Option("enable_auto_commit", _bool),
    "fetch.min.bytes": Option("fetch_min_bytes", _int),
    "fetch.max.bytes": Option("fetch_max_bytes", _int),
    "fetch.max.wait.ms": Option("fetch_max_wait_ms", _int),
    "max.partition.fetch.bytes": Option("max_partition_fetch_bytes", _int),
    "max.poll.records": Option("max_poll_records", _int),
    "max.poll.interval.ms": Option("max_poll_interval_ms", _int),
    "session.timeout.ms": Option("session_timeout_ms", _int),
    "heartbeat.interval.ms": Option("heartbeat_interval_ms", _int),
    "rebalance.timeout.ms": Option("rebalance_timeout_ms", _int),
    "isolation.level": Option("isolation_level", _choice("read_uncommitted", "read_committed")),
    "check.crcs": Option("check_crcs", _bool),
    "exclude.internal.topics": Option("exclude_internal_topics", _bool),
    "partition.assignment.strategy": Option("partition_assignment_strategy", _strategies),
    "key.deserializer": Option(None, note=_SERIALIZERS),
    "value.deserializer": Option(None, note=_SERIALIZERS),
}

_ADMIN: dict[str, Option] = dict(_COMMON)

OPTIONS: dict[Role, dict[str, Option]] = {
    "consumer": _CONSUMER,
    "producer": _PRODUCER,
    "admin": _ADMIN,
}

PRODUCER_DEFAULTS: dict[str, Any] = {"acks": "all", "enable_idempotence": True}
CONSUMER_DEFAULTS: dict[str, Any] = {"auto_offset_reset": "earliest"}


@dataclass(frozen=True, slots=True)
class OptionProblem:
    """A raw client setting that is wrong: its key below the section, and why."""

    key: str
    message: str


def _did_you_mean(name: str, role: Role) -> str:
    close = difflib.get_close_matches(name, list(OPTIONS[role]), n=1, cutoff=0.6)
    return f"; did you mean '{role}.{close[0]}'?" if close else ""


def check(settings: KafkaSettings) -> list[OptionProblem]:
    """Every unknown name or unconvertible value in the three maps."""
    problems: list[OptionProblem] = []
    for role in OPTIONS:
        for name, value in _raw(settings, role).items():
            option = OPTIONS[role].get(name)
            if option is None:
                problems.append(
                    OptionProblem(
                        f"{role}.{name}",
                        f"unknown Kafka {role} setting {name!r}{_did_you_mean(name, role)} "
                        "(Kafka's own config names, e.g. linger.ms, group.id)",
                    )
                )
                continue
            try:
                converted = option.convert(value)
            except ValueError as exc:
                problems.append(OptionProblem(f"{role}.{name}", str(exc)))
                continue
            if role == "consumer" and name == "enable.auto.commit" and converted:
                problems.append(
                    OptionProblem(
                        f"{role}.{name}",
                        "must be false: the plugin commits offsets itself after each ack, "
                        "auto-commit would commit messages not yet processed",
                    )
                )
    return problems


def _raw(settings: KafkaSettings, role: Role) -> Mapping[str, str]:
    raw: Mapping[str, str] = getattr(settings, role)
    return raw


@dataclass(frozen=True, slots=True)
class ClientArguments:
    """aiokafka keyword arguments of one client, and its TLS file settings."""

    kwargs: dict[str, Any]
    ssl: dict[str, Any]


def translate(settings: KafkaSettings, role: Role) -> ClientArguments:
    """The aiokafka arguments of ``role``'s client. Call :func:`check` first: this raises
    ``ValueError`` on the first problem."""
    kwargs: dict[str, Any] = {"bootstrap_servers": settings.bootstrap_servers}
    if role == "producer":
        kwargs.update(PRODUCER_DEFAULTS)
    elif role == "consumer":
        kwargs.update(CONSUMER_DEFAULTS)
    ssl: dict[str, Any] = {}
    for name, value in _raw(settings, role).items():
        option = OPTIONS[role].get(name)
        if option is None:
            raise ValueError(f"unknown Kafka {role} setting {name!r}")
        if option.target is None:
            continue
        converted = option.convert(value)
        if option.target.startswith("ssl:"):
            ssl[option.target.removeprefix("ssl:")] = converted
        else:
            kwargs[option.target] = converted
    if role == "consumer":
        kwargs["enable_auto_commit"] = False
        kwargs.pop("group_id", None)  # chosen per subscription
    return ClientArguments(kwargs, ssl)
