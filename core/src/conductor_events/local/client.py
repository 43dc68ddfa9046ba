"""The ``local`` queue client: publish, subscribe, and the delivery operations."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Sequence

import structlog

from conductor_events.errors import MalformedSinkError
from conductor_events.local.settings import LocalQueueSettings
from conductor_events.local.store import LocalStore, NewRow, Row
from conductor_events.messages import (
    Message,
    PublishFailure,
    PublishResult,
    build_received_message,
    decode_payload,
)
from conductor_events.queues import Delivery, QueueClient, SubscribeOptions, Subscription

log = structlog.get_logger(__name__)

_LOCATION = re.compile(r"^[A-Za-z0-9_.:/@-]{1,255}$")


class LocalQueueClient(QueueClient):
    """All local queues of one SQLite file. Queues exist as soon as something is published."""

    def __init__(self, settings: LocalQueueSettings) -> None:
        self.settings = settings
        self.max_message_size = settings.max_message_size
        self.store = LocalStore(
            settings.path,
            max_deliveries=settings.max_deliveries,
            busy_timeout=settings.busy_timeout.total_seconds(),
        )
        self._waiters: dict[str, set[asyncio.Event]] = {}

    def parse_location(self, location: str) -> str:
        if not location:
            raise MalformedSinkError("the queue name after 'local:' is empty")
        if not _LOCATION.match(location):
            raise MalformedSinkError(
                f"invalid local queue name {location!r}: use up to 255 letters, digits "
                "and _ . : / @ -"
            )
        return location

    async def publish(self, location: str, messages: Sequence[Message]) -> PublishResult:
        limit = self.settings.max_message_size
        rows: list[NewRow] = []
        failed: list[PublishFailure] = []
        for message in messages:
            try:
                body = message.body()
            except (TypeError, ValueError) as exc:
                failed.append(PublishFailure(message.id, f"payload is not JSON: {exc}"))
                continue
            if len(body) > limit:
                failed.append(
                    PublishFailure(
                        message.id,
                        f"message of {len(body)} bytes exceeds the local queue limit of {limit} "
                        "bytes (conductor.event-queues.local.max-message-size)",
                    )
                )
                continue
            headers = json.dumps(dict(message.headers)) if message.headers else None
            rows.append(NewRow(message.id, body, headers, message.key, message.created_at))
        if rows:
            await self.store.insert(location, rows)
            for event in self._waiters.get(location, ()):
                event.set()
        return PublishResult([row.id for row in rows], failed)

    async def subscribe(self, location: str, options: SubscribeOptions) -> Subscription:
        await self.store.depth(location)  # opens the file now, so a bad path fails here
        return LocalSubscription(self, location, options)

    async def depth(self, location: str) -> int:
        """Messages in a queue, in flight included (for tests and tools)."""
        return await self.store.depth(location)

    async def close(self) -> None:
        self.store.close()

    def _watch(self, location: str, event: asyncio.Event) -> None:
        self._waiters.setdefault(location, set()).add(event)

    def _unwatch(self, location: str, event: asyncio.Event) -> None:
        self._waiters.get(location, set()).discard(event)


class LocalSubscription(Subscription):
    """Claims messages in FIFO order; an in-process publish wakes it at once."""

    def __init__(self, client: LocalQueueClient, location: str, options: SubscribeOptions) -> None:
        super().__init__(options)
        self._client = client
        self._location = location
        self._visibility = client.settings.visibility_timeout.total_seconds()
        self.poll_interval = max(client.settings.poll_interval.total_seconds(), 0.001)
        self._wakeup = asyncio.Event()
        client._watch(location, self._wakeup)

    async def _fetch(self, max_messages: int, timeout: float) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        store = self._client.store
        while True:
            self._wakeup.clear()
            receipt, rows = await store.claim(self._location, max_messages, self._visibility)
            if rows:
                return [LocalDelivery(self._client, self._location, row, receipt) for row in rows]
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.closed:
                return []
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), min(remaining, self.poll_interval))

    async def _ack_many(self, deliveries: Sequence[Delivery]) -> list[Exception | None]:
        """One transaction for the whole batch: one commit instead of one per message."""
        own = [d for d in deliveries if isinstance(d, LocalDelivery)]
        if len(own) != len(deliveries):
            return await super()._ack_many(deliveries)
        deleted = await self._client.store.ack_many([(d._seq, d._receipt) for d in own])
        for delivery, ok in zip(own, deleted, strict=True):
            if not ok:
                delivery._lost("ack")
        return [None] * len(own)

    async def _close(self) -> None:
        self._client._unwatch(self._location, self._wakeup)


class LocalDelivery(Delivery):
    __slots__ = ("_client", "_queue", "_receipt", "_seq")

    def __init__(self, client: LocalQueueClient, queue: str, row: Row, receipt: int) -> None:
        message = build_received_message(
            decode_payload(row.body), row.id, row.headers, row.key, row.created_at
        )
        super().__init__(message, row.attempts, dead_letter_reason=row.dead_letter_reason)
        self._client = client
        self._queue = queue
        self._seq = row.seq
        self._receipt = receipt

    def _lost(self, action: str) -> None:
        log.warning(
            "local.delivery.expired",
            action=action,
            queue=self._queue,
            message_id=self.message.id,
            hint="the visibility timeout passed first; the message is delivered again",
        )

    async def _ack(self) -> None:
        if not await self._client.store.ack(self._seq, self._receipt):
            self._lost("ack")

    async def _nack(self, delay: float, reason: str | None) -> None:
        store = self._client.store
        if not await store.nack(self._queue, self._seq, self._receipt, self.attempt, delay, reason):
            self._lost("nack")

    async def _extend(self, seconds: float) -> None:
        if not await self._client.store.extend(self._seq, self._receipt, seconds):
            self._lost("extend")

    async def _dead_letter(self, reason: str) -> None:
        if not await self._client.store.dead_letter(self._seq, self._receipt, reason):
            self._lost("dead-letter")

    async def _release(self) -> None:
        if not await self._client.store.release(self._seq, self._receipt):
            self._lost("release")
