"""The ``local`` queue client: publish, subscribe, and the delivery operations."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Sequence

import structlog

from conductor_events.backend import (
    Delivery,
    DeliveryHandle,
    QueueClient,
    SubscribeOptions,
    Subscription,
)
from conductor_events.errors import MalformedSinkError
from conductor_events.local.settings import LocalQueueSettings
from conductor_events.local.store import LocalStore, NewRow, Row
from conductor_events.messages import Message, PublishFailure, PublishResult, decode_payload

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
                return [_delivery(store, self._location, row, receipt) for row in rows]
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.closed:
                return []
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), min(remaining, self.poll_interval))

    async def _ack_many(self, handles: Sequence[DeliveryHandle]) -> list[Exception | None]:
        """One transaction for the whole batch: one commit instead of one per message."""
        own = [h for h in handles if isinstance(h, LocalHandle)]
        if len(own) != len(handles):
            return await super()._ack_many(handles)
        deleted = await self._client.store.ack_many([(h.seq, h.receipt) for h in own])
        for handle, ok in zip(own, deleted, strict=True):
            if not ok:
                handle.lost("ack")
        return [None] * len(own)

    async def _close(self) -> None:
        self._client._unwatch(self._location, self._wakeup)


def _delivery(store: LocalStore, queue: str, row: Row, receipt: int) -> Delivery:
    message = Message(decode_payload(row.body), row.id, row.headers, row.key, row.created_at)
    handle = LocalHandle(store, queue, row.seq, receipt, row.id, row.attempts)
    return Delivery(message, row.attempts, handle, dead_letter_reason=row.dead_letter_reason)


class LocalHandle(DeliveryHandle):
    """A claimed row of a local queue: ``queue``, its sequence number ``seq`` and the claim's
    ``receipt``, which a later claim of the same row (after the visibility timeout) replaces,
    so that a settlement that comes too late changes nothing."""

    __slots__ = ("_store", "attempt", "message_id", "queue", "receipt", "seq")

    def __init__(
        self, store: LocalStore, queue: str, seq: int, receipt: int, message_id: str, attempt: int
    ) -> None:
        self._store = store
        self.queue = queue
        self.seq = seq
        self.receipt = receipt
        self.message_id = message_id
        self.attempt = attempt

    def lost(self, action: str) -> None:
        """The claim had expired: log it; the message is delivered again."""
        log.warning(
            "local.delivery.expired",
            action=action,
            queue=self.queue,
            message_id=self.message_id,
            hint="the visibility timeout passed first; the message is delivered again",
        )

    async def ack(self) -> None:
        if not await self._store.ack(self.seq, self.receipt):
            self.lost("ack")

    async def nack(self, delay: float, reason: str | None) -> None:
        store = self._store
        if not await store.nack(self.queue, self.seq, self.receipt, self.attempt, delay, reason):
            self.lost("nack")

    async def extend(self, seconds: float) -> None:
        if not await self._store.extend(self.seq, self.receipt, seconds):
            self.lost("extend")

    async def dead_letter(self, reason: str) -> None:
        if not await self._store.dead_letter(self.seq, self.receipt, reason):
            self.lost("dead-letter")

    async def release(self) -> None:
        if not await self._store.release(self.seq, self.receipt):
            self.lost("release")
