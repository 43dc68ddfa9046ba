"""An example conductor-events plugin: the ``memory`` queue type, kept in the process.

Complete and small on purpose: it is the example in docs/plugins.md, and the test suite runs
the conformance kit against it. Messages live in the client, so they are lost when the process
exits: use it for tests and demos, never where a message matters.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from pydantic import Field

from conductor_events import hookimpl
from conductor_events.config import QueueSettings
from conductor_events.messages import Message, PublishFailure, PublishResult
from conductor_events.queues import (
    Delivery,
    QueueClient,
    QueueType,
    SubscribeOptions,
    Subscription,
)


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
            description="in-process queues (example plugin)",
        )
    )


class MemoryClient(QueueClient):
    def __init__(self, settings: MemorySettings) -> None:
        self.max_message_size = self.limit = settings.max_message_size
        self._queues: dict[str, deque[tuple[Message, int]]] = {}
        self._arrived = asyncio.Condition()

    async def publish(self, location: str, messages: Sequence[Message]) -> PublishResult:
        result = PublishResult()
        queue = self._queues.setdefault(location, deque())
        for message in messages:
            size = len(message.body())
            if size > self.limit:
                result.failed.append(PublishFailure(message.id, f"{size} bytes is too large"))
                continue
            queue.append((message, 1))
            result.published.append(message.id)
        async with self._arrived:
            self._arrived.notify_all()
        return result

    async def subscribe(self, location: str, options: SubscribeOptions) -> Subscription:
        return MemorySubscription(self, location, options)

    async def put_back(self, location: str, message: Message, attempt: int, delay: float) -> None:
        await asyncio.sleep(delay)
        self._queues.setdefault(location, deque()).appendleft((message, attempt))
        async with self._arrived:
            self._arrived.notify_all()


class MemorySubscription(Subscription):
    def __init__(self, client: MemoryClient, location: str, options: SubscribeOptions) -> None:
        super().__init__(options)
        self._client, self._location = client, location

    async def _fetch(self, max_messages: int, timeout: float) -> list[Delivery]:
        queue = self._client._queues.setdefault(self._location, deque())
        if not queue:
            async with self._client._arrived:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._client._arrived.wait(), timeout)
        taken = [queue.popleft() for _ in range(min(max_messages, len(queue)))]
        return [MemoryDelivery(self._client, self._location, m, n) for m, n in taken]


class MemoryDelivery(Delivery):
    __slots__ = ("_client", "_location")

    def __init__(self, client: MemoryClient, location: str, message: Message, attempt: int):
        super().__init__(message, attempt)
        self._client, self._location = client, location

    async def _ack(self) -> None:
        pass

    async def _nack(self, delay: float, reason: str | None) -> None:
        put_back = self._client.put_back(self._location, self.message, self.attempt + 1, delay)
        if delay:
            asyncio.get_running_loop().create_task(put_back)
        else:
            await put_back

    async def _extend(self, seconds: float) -> None:
        pass  # nothing expires in memory

    async def _release(self) -> None:
        await self._client.put_back(self._location, self.message, self.attempt, 0)
