"""``conductor.event-queues.local.*``."""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from pydantic import Field

from conductor_events.config.durations import Millis, Seconds
from conductor_events.config.settings import QueueSettings

DEFAULT_PATH = "conductor-events.db"


class LocalQueueSettings(QueueSettings):
    """The ``local`` queue: enabled by default, so everything works with no broker installed."""

    section: ClassVar[str] = "conductor.event-queues.local"

    enabled: bool = Field(default=True, description="Use the local queue type.")
    path: str = Field(
        default=DEFAULT_PATH,
        description="SQLite file holding every local queue; relative paths are from the "
        "current directory.",
    )
    visibility_timeout: Seconds = Field(
        default=timedelta(seconds=60),
        description="How long a received message stays invisible before it is delivered "
        "again, unless acked, nacked or extended. Bare numbers are seconds.",
    )
    max_deliveries: int = Field(
        default=5,
        ge=1,
        description="Deliveries of one message before it moves to the `<queue>.dlq` queue.",
    )
    max_message_size: int = Field(
        default=1024 * 1024,
        ge=1,
        le=256 * 1024 * 1024,
        description="Largest encoded payload, in bytes, a publish accepts.",
    )
    poll_interval: Millis = Field(
        default=timedelta(milliseconds=100),
        description="How often an idle consumer looks for messages published by other "
        "processes (the same process wakes it at once). Bare numbers are milliseconds.",
    )
    busy_timeout: Seconds = Field(
        default=timedelta(seconds=30),
        description="How long an operation waits for another process's write lock before "
        "failing. Bare numbers are seconds.",
    )
