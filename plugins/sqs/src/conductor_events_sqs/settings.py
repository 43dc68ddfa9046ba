"""``conductor.event-queues.sqs.*``: Conductor's keys with its defaults, plus what it lacked.

Imports pydantic and the core only, so loading the plugin stays cheap.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated, ClassVar
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, SecretStr, field_validator

from conductor_events.config import Millis, PositiveSeconds, QueueSettings, Seconds

SQS_MAX_BATCH = 10
"""Entries SQS accepts in one batch call, and messages in one ReceiveMessage."""

SQS_MAX_VISIBILITY = timedelta(hours=12)
SQS_MAX_WAIT = timedelta(seconds=20)

_ACCOUNT = re.compile(r"^\d{12}$")


def _comma_list(value: object) -> object:
    """``a, b`` as written in a properties file, or a list given in code."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _blank_is_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


CommaList = Annotated[list[str], BeforeValidator(_comma_list)]
Optional = BeforeValidator(_blank_is_none)


def _whole_seconds(value: timedelta) -> int:
    return math.ceil(value.total_seconds())


class SqsSettings(QueueSettings):
    """Amazon SQS queues (and anything speaking its API: LocalStack, moto, ElasticMQ).

    Credentials come from the standard AWS chain (environment variables, ``AWS_PROFILE`` or
    ``profile``, the shared credentials file, container and instance roles); the explicit keys
    below are for endpoints such as LocalStack that take any key.
    """

    section: ClassVar[str] = "conductor.event-queues.sqs"

    enabled: bool = Field(default=False, description="Use the `sqs` queue type.")
    batch_size: int = Field(
        default=1,
        description="Messages one ReceiveMessage call asks for (SQS allows 1 to 10); "
        "Conductor's default of 1 is slow, use 10 for throughput.",
    )
    poll_time_duration: Millis = Field(
        default=timedelta(milliseconds=100),
        description="Pause after a receive that returned nothing, before the next one (with "
        "`wait-time=0` this is the short-polling interval). Bare numbers are milliseconds.",
    )
    visibility_timeout: Seconds = Field(
        default=timedelta(seconds=60),
        description="How long a received message stays invisible to other consumers unless "
        "acked, nacked or extended; at most 12h, whole seconds (rounded up). Bare numbers "
        "are seconds.",
    )
    authorized_accounts: CommaList = Field(
        default_factory=list,
        description="Comma-separated 12-digit AWS account ids allowed to `sqs:SendMessage` to "
        "the queues this process uses; added to each queue's existing policy as one "
        "statement, never replacing it.",
    )
    endpoint: str = Field(
        default="",
        description="Endpoint URL override, e.g. `http://localhost:4566` for LocalStack; "
        "blank uses AWS's endpoint for the region.",
    )
    listener_queue_prefix: str = Field(
        default="",
        description="Prefix of Conductor's default listener queues `<prefix>COMPLETED` and "
        "`<prefix>FAILED`; blank gives Conductor's `conductor_sqs_notify_test_`.",
    )
    region: Annotated[str | None, Optional] = Field(
        default=None,
        description="AWS region; blank takes the AWS chain's (`AWS_REGION`, "
        "`AWS_DEFAULT_REGION`, the profile), then `us-east-1` as Conductor does.",
    )
    profile: Annotated[str | None, Optional] = Field(
        default=None,
        description="Named profile of the shared AWS config and credentials files; blank "
        "uses `AWS_PROFILE` or the default chain.",
    )
    access_key_id: Annotated[str | None, Optional] = Field(
        default=None,
        description="Access key id; blank uses the AWS credential chain (recommended).",
    )
    secret_access_key: Annotated[SecretStr | None, Optional] = Field(
        default=None,
        description="Secret access key that goes with `access-key-id`; never logged or shown.",
    )
    session_token: Annotated[SecretStr | None, Optional] = Field(
        default=None,
        description="Session token for temporary credentials given with `access-key-id`.",
    )
    wait_time: Seconds = Field(
        default=SQS_MAX_WAIT,
        description="Long-polling wait of each ReceiveMessage call (0 to 20s): an idle queue "
        "costs one request per wait and holds no other queue up. 0 short-polls as Conductor "
        "does. Bare numbers are seconds.",
    )
    create_queues: bool = Field(
        default=True,
        description="Create a queue (and its dead-letter queue) that does not exist on first "
        "use, as Conductor always does; `false` makes a missing queue an error.",
    )
    dead_letter_queue: str = Field(
        default="",
        description="Dead-letter queue name or URL for queues that have no redrive policy of "
        "their own; `{queue}` stands for the source queue's name (without `.fifo`), so "
        "`{queue}_dlq` gives each queue its own. Blank: none.",
    )
    max_receive_count: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Deliveries of a message before a nack moves it to the dead-letter queue "
        "(a queue's own redrive policy with a lower `maxReceiveCount` lowers it). Queues this "
        "plugin creates get a redrive policy of twice this as a backstop for consumers that "
        "crash.",
    )
    max_in_flight: int = Field(
        default=10,
        ge=1,
        le=10_000,
        description="Received messages not yet acked or nacked, per subscription (a "
        "subscriber may ask for fewer). Receive calls of `batch-size` run concurrently to "
        "fill the subscriber's read-ahead within this limit.",
    )
    fifo_message_group_id: str = Field(
        default="default",
        min_length=1,
        max_length=128,
        pattern=r"^[!-~]+$",
        description="MessageGroupId for messages without a key sent to a FIFO queue (a key "
        "becomes the group id; the message id, the deduplication id).",
    )
    publish_concurrency: int = Field(
        default=8,
        ge=1,
        le=64,
        description="Batch calls (send, delete, change visibility) in flight per queue; "
        "messages published meanwhile are batched into the next call.",
    )
    connect_timeout: PositiveSeconds = Field(
        default=timedelta(seconds=5),
        description="Bound on opening a connection to the endpoint. Bare numbers are seconds.",
    )
    read_timeout: PositiveSeconds = Field(
        default=timedelta(seconds=10),
        description="Bound on waiting for an answer (long polls get `wait-time` more). Bare "
        "numbers are seconds.",
    )
    max_attempts: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Attempts per call, the first included, on throttling and connection "
        "errors (botocore's standard retry mode).",
    )

    @field_validator("batch_size")
    @classmethod
    def _check_batch_size(cls, value: int) -> int:
        if not 1 <= value <= SQS_MAX_BATCH:
            raise ValueError(
                f"SQS receives 1 to {SQS_MAX_BATCH} messages per call; {value} is out of range"
            )
        return value

    @field_validator("visibility_timeout")
    @classmethod
    def _check_visibility(cls, value: timedelta) -> timedelta:
        if value > SQS_MAX_VISIBILITY:
            raise ValueError(
                f"{value.total_seconds():.0f}s is over SQS's maximum visibility timeout of 12h"
            )
        return timedelta(seconds=_whole_seconds(value))

    @field_validator("wait_time")
    @classmethod
    def _check_wait_time(cls, value: timedelta) -> timedelta:
        if value > SQS_MAX_WAIT:
            raise ValueError(
                f"{value.total_seconds():g}s is over SQS's maximum long-polling wait of 20s"
            )
        return timedelta(seconds=_whole_seconds(value))

    @field_validator("authorized_accounts")
    @classmethod
    def _check_accounts(cls, value: list[str]) -> list[str]:
        bad = [account for account in value if not _ACCOUNT.match(account)]
        if bad:
            raise ValueError(
                f"AWS account ids are 12 digits; {', '.join(repr(b) for b in bad)} is not"
            )
        return list(dict.fromkeys(value))

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(
                f"expected an http:// or https:// URL such as http://localhost:4566, got {value!r}"
            )
        return value

    @property
    def visibility_seconds(self) -> int:
        return _whole_seconds(self.visibility_timeout)

    @property
    def wait_seconds(self) -> int:
        return _whole_seconds(self.wait_time)

    def listener_queues(self) -> list[str]:
        """Conductor's default listener queues: ``<prefix>COMPLETED`` and ``<prefix>FAILED``."""
        prefix = self.listener_queue_prefix or "conductor_sqs_notify_test_"
        return [f"{prefix}COMPLETED", f"{prefix}FAILED"]
