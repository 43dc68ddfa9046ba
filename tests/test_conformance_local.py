"""The built-in ``local`` queue against the conformance kit.

``local`` makes every promise the kit can check except consumer groups, replay and
exactly-once (it is a queue with competing consumers and at-least-once delivery), so every
other scenario must pass. The properties set a short visibility timeout so the
visibility-extension scenario takes seconds, and a fast poll interval so redeliveries after
a nack are picked up promptly. Foreign bodies are rows another tool writes into the queue
file with sqlite3.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest

import conductor_events.local.plugin
from conductor_events.local.client import LocalQueueClient
from conductor_events.testing import (
    Capabilities,
    DeadLetterSupport,
    Harness,
    QueueConformance,
    RawPublisher,
)

VISIBILITY_TIMEOUT = 2.0
MAX_DELIVERIES = 5
PATH = "conductor.event-queues.local.path"


async def reopen_queue_file(harness: Harness) -> None:
    """The local queue's broker is its SQLite file: restarting it means dropping the client's
    connection; the next operation must reopen it without losing a message."""
    client = harness.client
    assert isinstance(client, LocalQueueClient)
    client.store.close()


async def write_rows(harness: Harness, location: str, bodies: Sequence[bytes]) -> None:
    """A foreign producer: rows written into the queue file with sqlite3, each with its own
    id, no headers, the body's bytes as they are."""
    client = harness.client
    assert isinstance(client, LocalQueueClient)
    await client.depth(location)  # the client creates the file and its table on first use
    await asyncio.to_thread(insert_rows, harness.properties[PATH], location, bodies)


def insert_rows(path: str, queue: str, bodies: Sequence[bytes]) -> None:
    now = time.time()
    with contextlib.closing(sqlite3.connect(path, timeout=10)) as db, db:
        db.executemany(
            "INSERT INTO messages (queue, id, body, created_at, visible_at) VALUES (?, ?, ?, ?, ?)",
            [(queue, str(uuid.uuid4()), body, now, now) for body in bodies],
        )


class TestLocalQueueConformance(QueueConformance):
    plugin = conductor_events.local.plugin
    queue_type = "local"
    short = True
    capabilities = Capabilities(
        persistent=True,
        ordered=True,
        dead_letter=DeadLetterSupport(
            location=lambda name: f"{name}.dlq", max_deliveries=MAX_DELIVERIES
        ),
        visibility_timeout=VISIBILITY_TIMEOUT,
        restart_broker=reopen_queue_file,
        raw_publisher=RawPublisher(write_rows),
    )

    @pytest.fixture
    def queue_properties(self, tmp_path: Path) -> dict[str, str]:
        return {
            PATH: str(tmp_path / "conformance.db"),
            "conductor.event-queues.local.visibility-timeout": f"{VISIBILITY_TIMEOUT:g}s",
            "conductor.event-queues.local.max-deliveries": str(MAX_DELIVERIES),
            "conductor.event-queues.local.poll-interval": "20ms",
        }
