"""Registers the ``local`` queue type. Importing this imports no SQLite code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conductor_events.backend import QueueClient, QueueType
from conductor_events.hookspecs import hookimpl
from conductor_events.local.settings import LocalQueueSettings


def _connect(settings: LocalQueueSettings) -> QueueClient:
    from conductor_events.local.client import LocalQueueClient

    return LocalQueueClient(settings)


@hookimpl
def register_queue_types(register: Callable[[QueueType[Any]], None]) -> None:
    register(
        QueueType(
            name="local",
            settings=LocalQueueSettings,
            connect=_connect,
            description="durable queues in one SQLite file (built in, no broker)",
            locations="a queue name; `<name>.dlq` is its dead-letter queue",
        )
    )
