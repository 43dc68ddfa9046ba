"""``conductor.event-queues.nats.*`` and ``conductor.event-queues.jsm.*``: Conductor's keys with
its defaults where they are safe, plus what it lacked (credentials, timeouts, dead-lettering).

Imports pydantic and the core only, so loading the plugin stays cheap.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, SecretStr, field_validator

from conductor_events.config import PositiveMillis, PositiveSeconds, QueueSettings, Seconds

DEFAULT_URL = "nats://localhost:4222"
NATS_MAX_PAYLOAD = 1024 * 1024
"""The NATS server's default ``max_payload``: a whole message, headers included."""

_TOKEN = r"[A-Za-z0-9_-]+"
SUBJECT = re.compile(rf"^{_TOKEN}(\.{_TOKEN})*$")
"""Subjects this plugin publishes to and consumes from: dot-separated tokens of letters,
digits, ``_`` and ``-`` (no wildcards: every location is one subject)."""
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""Queue groups, durable consumer names and stream names."""


def check_subject(subject: str) -> str | None:
    """Why ``subject`` is not a subject this plugin accepts, or ``None`` when it is."""
    if not SUBJECT.match(subject):
        return (
            f"invalid NATS subject {subject!r}: use dot-separated tokens of letters, digits, "
            "'_' or '-' (no spaces, no wildcards '*' or '>', no empty token)"
        )
    return None


def check_name(name: str, what: str) -> str | None:
    """Why ``name`` is not a valid queue group, consumer or stream name, or ``None``."""
    if not NAME.match(name):
        return f"invalid {what} {name!r}: use 1 to 64 letters, digits, '_' or '-'"
    return None


def _blank_is_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


Optional = BeforeValidator(_blank_is_none)


def redact_url(url: str) -> str:
    """``url`` without the user information (``nats://user:pass@host`` -> ``nats://host``)."""
    parts = []
    for server in url.split(","):
        server = server.strip()
        split = urlsplit(server if "://" in server else f"nats://{server}")
        host = split.hostname or ""
        try:
            port = f":{split.port}" if split.port else ""
        except ValueError:
            port = ""
        parts.append(f"{split.scheme}://{host}{port}")
    return ",".join(parts)


class ConnectionSettings(QueueSettings):
    """What both queue types need to reach a NATS server."""

    url: str = Field(
        default=DEFAULT_URL,
        min_length=1,
        description="NATS server URL, or a comma-separated list of them "
        "(`nats://host:4222`, `tls://host:4222`). Credentials belong in `username`/`password` "
        "or `token`: user information in the URL is never shown.",
    )
    username: Annotated[str | None, Optional] = Field(
        default=None, description="User name for user/password authentication."
    )
    password: Annotated[SecretStr | None, Optional] = Field(
        default=None, description="Password that goes with `username`; never logged or shown."
    )
    token: Annotated[SecretStr | None, Optional] = Field(
        default=None, description="Authentication token; never logged or shown."
    )
    connect_timeout: PositiveSeconds = Field(
        default=timedelta(seconds=5),
        description="Bound on connecting: an unreachable server or refused credentials fail "
        "the first publish or subscribe within it, with the server's reason. Bare numbers "
        "are seconds.",
    )
    max_reconnects: int = Field(
        default=-1,
        ge=-1,
        description="Reconnect attempts per server after a connection is lost; -1 retries "
        "for ever (Conductor's default).",
    )
    reconnect_wait: PositiveMillis = Field(
        default=timedelta(seconds=2),
        description="Pause between reconnect attempts to one server. Bare numbers are "
        "milliseconds.",
    )
    publish_timeout: PositiveSeconds = Field(
        default=timedelta(seconds=5),
        description="How long a publish waits for the server's confirmation before reporting "
        "its messages failed: for `nats`, that the server has read them; for `jsm`, each "
        "message's acknowledgement by its stream. Bare numbers are seconds.",
    )
    max_message_size: int = Field(
        default=1_000_000,
        ge=1,
        le=64 * 1024 * 1024,
        description="Largest encoded payload, in bytes, a publish accepts; larger messages fail "
        "one by one, with a reason. The server's `max_payload` (1 MiB by default) bounds "
        "payload and headers together, so keep this below it.",
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        servers = [part.strip() for part in value.split(",") if part.strip()]
        if not servers:
            raise ValueError("expected a NATS URL such as nats://localhost:4222")
        for server in servers:
            split = urlsplit(server if "://" in server else f"nats://{server}")
            if split.scheme not in {"nats", "tls", "ws", "wss"} or not split.hostname:
                raise ValueError(
                    f"{redact_url(server)!r} is not a NATS URL: expected nats://host:port "
                    "(or tls://, ws://, wss://)"
                )
            try:
                split.port  # noqa: B018 - parsing it is the check
            except ValueError:
                raise ValueError(f"{redact_url(server)!r} has an invalid port") from None
        return ",".join(servers)

    @property
    def servers(self) -> list[str]:
        return [server.strip() for server in self.url.split(",")]

    @property
    def shown_url(self) -> str:
        """The URL as errors and logs show it: without user information."""
        return redact_url(self.url)


class NatsSettings(ConnectionSettings):
    """Core NATS (type ``nats``): subjects, optionally with a queue group. At most once: the
    server keeps nothing, so a message reaches only the subscriptions open when it is
    published, and one a subscription holds when it stops is lost.

    Conductor's ``nats`` module has no properties besides ``enabled`` (it always connects to
    ``nats://localhost:4222``); the keys here are this plugin's.
    """

    section: ClassVar[str] = "conductor.event-queues.nats"

    enabled: bool = Field(default=False, description="Use the `nats` queue type.")
    pending_messages_limit: int = Field(
        default=65536,
        ge=1,
        description="Messages the client buffers per subscription before the handler takes "
        "them; past it the client drops messages (NATS' slow-consumer rule) and logs "
        "`nats.slow_consumer`.",
    )


class JetStreamSettings(ConnectionSettings):
    """NATS JetStream (type ``jsm``): a stream stores each subject, and durable pull consumers
    read it with explicit acks, so messages wait for a subscriber and are redelivered until
    acked (at least once). Conductor's keys and defaults, except where noted."""

    section: ClassVar[str] = "conductor.event-queues.jsm"

    enabled: bool = Field(default=False, description="Use the `jsm` queue type.")
    listener_queue_prefix: str = Field(
        default="",
        description="Prefix of Conductor's default listener subjects `<prefix>COMPLETED` and "
        "`<prefix>FAILED`. Unlike Conductor, it is not prepended to every subject.",
    )
    durable_name: str = Field(
        default="defaultQueue",
        description="Durable consumer name when the location names no group "
        "(`subject:group`): subscriptions with the same name share the messages.",
    )
    default_queue_group: str = Field(
        default="wait-group",
        description="Group of Conductor's default listener queues `COMPLETED:wait-group` "
        "and `FAILED:wait-group`.",
    )
    stream_storage_type: Literal["file", "memory"] = Field(
        default="file",
        description="Storage of streams this plugin creates: `file` survives a server "
        "restart, `memory` does not.",
    )
    stream_max_bytes: int = Field(
        default=-1,
        ge=-1,
        description="Size limit of streams this plugin creates, in bytes; -1 is unlimited.",
    )
    replicas: int = Field(
        default=1,
        ge=1,
        le=5,
        description="Replicas of streams this plugin creates. Conductor's default is 3, "
        "which a single server (not clustered) refuses; set 3 on a cluster.",
    )
    auto_create_streams: bool = Field(
        default=True,
        description="Create a stream for a subject no stream stores, on first use (as "
        "Conductor does), named after the subject (upper case, `.` as `_`). `false` makes "
        "publishing to or consuming from such a subject an error, and dead-lettering to a "
        "subject without a stream fails (the message stays unacked).",
    )
    deliver_policy: Literal["all", "new"] = Field(
        default="all",
        description="Where a new durable consumer starts: `all` from the stream's first "
        "message (so messages published before the first subscriber are delivered), `new` "
        "only with messages published after it was created (Conductor's choice).",
    )
    poll_time_duration: PositiveMillis = Field(
        default=timedelta(milliseconds=100),
        description="Longest wait of one pull request when no message is ready; bounds how "
        "late a message published to an idle subject is seen. Bare numbers are "
        "milliseconds.",
    )
    ack_wait: PositiveMillis = Field(
        default=timedelta(seconds=60),
        description="Time a delivered message may go unacked before the server delivers it "
        "again (the visibility timeout). `Delivery.extend` resets it. Bare numbers are "
        "milliseconds.",
    )
    max_ack_pending: int = Field(
        default=100,
        ge=1,
        description="Messages a durable consumer hands out unacked, over all its "
        "subscriptions; the server waits for acks beyond it.",
    )
    max_deliver: int = Field(
        default=5,
        ge=1,
        description="Deliveries of one message before it goes to the dead-letter subject: a "
        "nack on the last one, or a delivery past it (a handler that never settled), "
        "publishes it there with the reason and then terminates it. Conductor stopped "
        "redelivering silently instead.",
    )
    dead_letter_subject: str = Field(
        default="{subject}.dlq",
        min_length=1,
        description="Subject that dead-lettered messages are published to, with headers "
        "naming the reason, the source subject and stream sequence. `{subject}` stands for "
        "the source subject. A stream must store it (one is created when "
        "`auto-create-streams` is on).",
    )
    duplicate_window: Seconds = Field(
        default=timedelta(minutes=2),
        description="Deduplication window of streams this plugin creates: a message "
        "published again with the same id (`Nats-Msg-Id`) within it is stored once. Bare "
        "numbers are seconds.",
    )

    @field_validator("durable_name", "default_queue_group")
    @classmethod
    def _check_name(cls, value: str) -> str:
        problem = check_name(value, "consumer name")
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("dead_letter_subject")
    @classmethod
    def _check_dead_letter_subject(cls, value: str) -> str:
        problem = check_subject(value.replace("{subject}", "s"))
        if problem is not None:
            raise ValueError(problem)
        return value

    def dead_letter_subject_for(self, subject: str) -> str:
        """The dead-letter subject of messages read from ``subject``."""
        return self.dead_letter_subject.replace("{subject}", subject)


def stream_name_for(subject: str) -> str:
    """The name of the stream this plugin creates for ``subject``, as Conductor names it:
    upper case, ``.`` as ``_`` (its ``*`` and ``>`` rules do not arise: no wildcards here)."""
    return subject.upper().replace(".", "_")
