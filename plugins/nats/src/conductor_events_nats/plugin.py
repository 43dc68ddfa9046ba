"""Registers the ``nats`` and ``jsm`` queue types. Importing this imports no nats-py: the
``connect`` functions do, on the first use of a type."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from conductor_events import hookimpl
from conductor_events.backend import QueueClient, QueueType
from conductor_events.config import ConfigProblem, Configuration
from conductor_events_nats.settings import JetStreamSettings, NatsSettings


def connect_nats(settings: NatsSettings) -> QueueClient:
    """The core NATS client; nats-py is imported here."""
    from conductor_events_nats.core import NatsQueueClient

    return NatsQueueClient(settings)


def connect_jetstream(settings: JetStreamSettings) -> QueueClient:
    """The JetStream client; nats-py is imported here."""
    from conductor_events_nats.jetstream import JetStreamQueueClient

    return JetStreamQueueClient(settings)


@hookimpl
def register_queue_types(register: Callable[[QueueType[Any]], None]) -> None:
    register(
        QueueType(
            name="nats",
            settings=NatsSettings,
            connect=connect_nats,
            description="core NATS subjects, at most once: only open subscriptions receive a "
            "message, and one held when a subscriber stops is lost (nats-py)",
            locations="a subject, or `<subject>:<queue group>` to share it with the group",
        )
    )
    register(
        QueueType(
            name="jsm",
            settings=JetStreamSettings,
            connect=connect_jetstream,
            description="NATS JetStream streams with durable pull consumers, at least once, "
            "dead-letter subject (nats-py)",
            locations="a subject, or `<subject>:<consumer>` to consume as that durable consumer",
        )
    )


@hookimpl
def validate_config(config: Configuration) -> Iterable[ConfigProblem] | None:
    problems = []
    for queue_type in ("nats", "jsm"):
        settings = config.settings(queue_type)
        if not isinstance(settings, NatsSettings | JetStreamSettings) or not settings.enabled:
            continue
        prefix = type(settings).section
        if settings.password is not None and settings.username is None:
            problems.append(
                config.problem(f"{prefix}.password", f"is set without {prefix}.username")
            )
        if settings.token is not None and settings.username is not None:
            problems.append(
                config.problem(
                    f"{prefix}.token",
                    f"and {prefix}.username are both set: NATS takes one way to authenticate",
                )
            )
    return problems
