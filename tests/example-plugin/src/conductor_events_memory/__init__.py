"""An example conductor-events plugin: the ``memory`` queue type, kept in the process.

Complete and small on purpose: it is the example in docs/plugins.md, and the test suite runs
the conformance kit against it. Messages live in the client, so they are lost when the process
exits: use it for tests and demos, never where a message matters.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NamedTuple

from pydantic import Field

from conductor_events import hookimpl
from conductor_events.backend import (
    Delivery,
    DeliveryHandle,
    QueueClient,
    QueueType,
    SubscribeOptions,
    Subscription,
)
from conductor_events.config import QueueSettings
from conductor_events.messages import Message, PublishFailure, PublishResult


class MemorySettings(QueueSettings):
    """``conductor.event-queues.memory.*``"""

    section: ClassVar[str] = "conductor.event-queues.memory"

    max_message_size: int = Field(default=64 * 1024, ge=1, description="Largest payload, bytes.")


@hookimpl
def register_queue_types(register: Callable[[QueueType[Any]], None]) -> None:
    register(
        QueueType(
            name="memory",
            settings=MemorySettings,
            connect=MemoryClient,
            description="example plugin (tests/example-plugin): in-process queues, lost on exit",
        )
    )


class MemoryClient(QueueClient):
    """Queues are lists kept in publish order, so a message put back returns to its place."""

    def __init__(self, settings: MemorySettings) -> None:
        self.max_message_size = self.limit = settings.max_message_size
        self._queues: dict[str, list[Entry]] = {}
        self._sequence = itertools.count()
        self._arrived = asyncio.Condition()
        self._delayed: set[asyncio.Task[None]] = set()

    def queue(self, location: str) -> list[Entry]:
        return self._queues.setdefault(location, [])

    async def publish(self, location: str, messages: Sequence[Message]) -> PublishResult:
        result = PublishResult()
        for message in messages:
            try:
                size = len(message.body())
            except (TypeError, ValueError) as exc:
                result.failed.append(PublishFailure(message.id, f"payload is not JSON: {exc}"))
                continue
            if size > self.limit:
                result.failed.append(PublishFailure(message.id, f"{size} bytes is too large"))
                continue
            self.queue(location).append(Entry(next(self._sequence), message, 1))
            result.published.append(message.id)
        await self._wake()
        return result

    async def subscribe(self, location: str, options: SubscribeOptions) -> Subscription:
        return MemorySubscription(self, location, options)

    async def put_back(self, location: str, entry: Entry, delay: float = 0) -> None:
        if delay:
            task = asyncio.get_running_loop().create_task(
                self._put_back_later(location, entry, delay)
            )
            self._delayed.add(task)  # keep a reference: the loop holds tasks weakly
            task.add_done_callback(self._delayed.discard)
            return
        bisect.insort(self.queue(location), entry)
        await self._wake()

    async def _put_back_later(self, location: str, entry: Entry, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.put_back(location, entry)

    async def _wake(self) -> None:
        async with self._arrived:
            self._arrived.notify_all()


class Entry(NamedTuple):
    """A queued message; ordered by its publish sequence."""

    sequence: int
    message: Message
    attempt: int


class MemorySubscription(Subscription):
    def __init__(self, client: MemoryClient, location: str, options: SubscribeOptions) -> None:
        super().__init__(options)
        self._client, self._location = client, location

    async def _fetch(self, max_messages: int, timeout: float) -> list[Delivery]:
        queue = self._client.queue(self._location)
        if not queue:
            async with self._client._arrived:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._client._arrived.wait(), timeout)
        taken, queue[:max_messages] = queue[:max_messages], []
        client, location = self._client, self._location
        return [Delivery(e.message, e.attempt, MemoryHandle(client, location, e)) for e in taken]


class MemoryHandle(DeliveryHandle):
    """What settling one delivered message needs: where it came from, and its queue entry."""

    def __init__(self, client: MemoryClient, location: str, entry: Entry) -> None:
        self._client, self._location, self._entry = client, location, entry

    async def ack(self) -> None:
        pass  # the entry left the queue when it was fetched

    async def nack(self, delay: float, reason: str | None) -> None:
        redelivery = self._entry._replace(attempt=self._entry.attempt + 1)
        await self._client.put_back(self._location, redelivery, delay)

    async def extend(self, seconds: float) -> None:
        pass  # nothing expires in memory

    async def release(self) -> None:
        await self._client.put_back(self._location, self._entry)
