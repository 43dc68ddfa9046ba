"""``conductor.event-worker.*``: what ``conductor-events worker`` polls for and how.

The Conductor server it polls, and the credentials, are ``conductor.server.*``, the keys
``serve`` uses: one set of connection settings for both commands.
"""

from __future__ import annotations

import socket
from datetime import timedelta
from typing import ClassVar

from pydantic import Field, field_validator

from conductor_events.config.durations import Seconds
from conductor_events.config.settings import SectionSettings
from conductor_events_handlers.settings import NameList

MAX_POLL_TIMEOUT = timedelta(seconds=5)
"""Conductor refuses a longer long-poll (``ExecutionService.MAX_POLL_TIMEOUT_MS``)."""


class EventWorkerSettings(SectionSettings):
    """``conductor.event-worker.*``: the worker's task types, polling and retries."""

    section: ClassVar[str] = "conductor.event-worker"

    task_types: NameList = Field(
        default_factory=lambda: ["event_publish"],
        description="Task types polled and executed as EVENT tasks, comma-separated "
        "(`--task-type` replaces them).",
    )
    domain: str | None = Field(
        default=None,
        description="Task domain to poll (the workflow's `taskToDomain` maps the task type to "
        "it); unset: tasks without a domain.",
    )
    poll_count: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="Most tasks asked for in one poll (fewer when fewer slots are free).",
    )
    poll_timeout: Seconds = Field(
        default=timedelta(seconds=1),
        description="How long the server may hold a poll open waiting for a task (long poll); "
        "at most 5s, Conductor's limit. Also bounds how long a stop waits for a poll. Bare "
        "numbers are seconds.",
    )
    concurrency: int = Field(
        default=32,
        ge=1,
        le=10_000,
        description="Tasks executed at once, over all task types; a task holds its slot from "
        "poll until its update is accepted.",
    )
    worker_id: str | None = Field(
        default=None,
        description="`workerid` sent with polls and updates (Conductor shows it on the task). "
        "Unset: the host name.",
    )
    initial_backoff: Seconds = Field(
        default=timedelta(milliseconds=200),
        description="Delay before retrying a failed poll or task update; doubled for each "
        "later try, with jitter. Bare numbers are seconds.",
    )
    max_backoff: Seconds = Field(
        default=timedelta(seconds=30),
        description="Longest delay between retries of a poll or task update. Bare numbers are "
        "seconds.",
    )
    in_progress_callback: Seconds = Field(
        default=timedelta(hours=1),
        description="For a task with `asyncComplete`: the `callbackAfterSeconds` sent with its "
        "IN_PROGRESS update, after which Conductor hands it to a worker again (which sends "
        "IN_PROGRESS again without publishing, or, after a restart, publishes it again with the "
        "same message id). Bare numbers are seconds.",
    )

    def effective_worker_id(self) -> str:
        """``worker-id``, or the host name."""
        return self.worker_id or socket.gethostname()

    @field_validator("poll_timeout")
    @classmethod
    def _at_most_five_seconds(cls, value: timedelta) -> timedelta:
        if value > MAX_POLL_TIMEOUT or value < timedelta(0):
            raise ValueError("poll-timeout must be between 0 and 5s (Conductor's limit)")
        return value

    @field_validator("task_types")
    @classmethod
    def _some_task_type(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("task-types must name at least one task type")
        return value
