"""The ``lease`` queue type: a small in-process backend with leases, attempts and dead letters,
which can be broken on purpose, so the kit's own tests show each scenario failing a backend
that gets its promise wrong (and passing the same backend when it keeps it).

Messages live in a store named by the ``store`` setting, shared by every client of that name,
so they outlive a client as a broker's would. A fetched message is leased for
``visibility-timeout`` seconds; when the lease runs out unsettled it is delivered again with
its attempt one higher, and a message past ``max-deliveries`` moves to ``<location>.dlq`` with
a reason on its next fetch. ``broken`` names faults, comma-separated:

* ``no-attempts``: every delivery says attempt 1;
* ``keep-expired``: a message past the limit is delivered again instead of dead-lettered;
* ``drop-expired``: a message past the limit is deleted, not dead-lettered;
* ``release-drops``: a message given back by a closing subscription is deleted (lost).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

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
from conductor_events.messages import Message, PublishResult

POLL = 0.01
"""Seconds between looks at the store while a fetch waits."""


class LeaseSettings(QueueSettings):
    """``conductor.event-queues.lease.*``"""

    section: ClassVar[str] = "conductor.event-queues.lease"

    store: str = Field(description="Name of the shared store holding the messages.")
    visibility_timeout: float = Field(default=0.3, gt=0, description="Lease, seconds.")
    max_deliveries: int = Field(default=3, ge=1, description="Deliveries before dead-letter.")
    broken: str = Field(default="", description="Faults to simulate, comma-separated.")


@hookimpl
def register_queue_types(register: Callable[[QueueType[Any]], None]) -> None:
    register(QueueType(name="lease", settings=LeaseSettings, connect=LeaseClient))


@dataclass
class Record:
    """One stored message and its lease."""

    message: Message
    attempts: int = 0
    visible_at: float = 0.0
    receipt: int = 0
    reason: str | None = None


STORES: dict[str, dict[str, list[Record]]] = {}
_receipts = itertools.count(1)


class LeaseClient(QueueClient):
    def __init__(self, settings: LeaseSettings) -> None:
        self.settings = settings
        self.broken = {part.strip() for part in settings.broken.split(",") if part.strip()}
        self.queues = STORES.setdefault(settings.store, {})

    def queue(self, location: str) -> list[Record]:
        return self.queues.setdefault(location, [])

    async def publish(self, location: str, messages: Sequence[Message]) -> PublishResult:
        self.queue(location).extend(Record(message) for message in messages)
        return PublishResult(published=[message.id for message in messages])

    async def subscribe(self, location: str, options: SubscribeOptions) -> Subscription:
        return LeaseSubscription(self, location, options)

    def dead_letter(self, location: str, record: Record, reason: str) -> None:
        self.queue(location).remove(record)
        self.queue(f"{location}.dlq").append(Record(record.message, reason=reason))

    def claim(self, location: str, limit: int) -> list[tuple[Record, int]]:
        """Lease up to ``limit`` visible messages; returns each with its receipt."""
        now = time.monotonic()
        settings = self.settings
        claimed: list[tuple[Record, int]] = []
        for record in list(self.queue(location)):
            if len(claimed) >= limit:
                break
            if record.visible_at > now:
                continue
            past_limit = record.attempts >= settings.max_deliveries
            if past_limit and not location.endswith(".dlq"):
                if "drop-expired" in self.broken:
                    self.queue(location).remove(record)
                    continue
                if "keep-expired" not in self.broken:
                    why = f"lease expired on each of {record.attempts} deliveries"
                    self.dead_letter(location, record, why)
                    continue
            record.attempts += 1
            record.visible_at = now + settings.visibility_timeout
            record.receipt = next(_receipts)
            claimed.append((record, record.receipt))
        return claimed


class LeaseSubscription(Subscription):
    def __init__(self, client: LeaseClient, location: str, options: SubscribeOptions) -> None:
        super().__init__(options)
        self.client, self.location = client, location

    async def _fetch(self, max_messages: int, timeout: float) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while True:
            claimed = self.client.claim(self.location, max_messages)
            if claimed or time.monotonic() >= deadline:
                break
            await asyncio.sleep(POLL)
        fixed = "no-attempts" in self.client.broken
        return [
            Delivery(
                record.message,
                1 if fixed else record.attempts,
                LeaseHandle(self.client, self.location, record, receipt),
                dead_letter_reason=record.reason,
            )
            for record, receipt in claimed
        ]


class LeaseHandle(DeliveryHandle):
    """Settles one leased message, as long as its lease is the current one."""

    def __init__(self, client: LeaseClient, location: str, record: Record, receipt: int) -> None:
        self.client, self.location, self.record, self.receipt = client, location, record, receipt

    def _current(self) -> bool:
        return self.record.receipt == self.receipt and self.record in self.client.queue(
            self.location
        )

    async def ack(self) -> None:
        if self._current():
            self.client.queue(self.location).remove(self.record)

    async def nack(self, delay: float, reason: str | None) -> None:
        if not self._current():
            return
        if self.record.attempts >= self.client.settings.max_deliveries:
            self.client.dead_letter(self.location, self.record, reason or "nacked")
        else:
            self.record.visible_at = time.monotonic() + delay

    async def extend(self, seconds: float) -> None:
        if self._current():
            self.record.visible_at = time.monotonic() + seconds

    async def dead_letter(self, reason: str) -> None:
        if self._current():
            self.client.dead_letter(self.location, self.record, reason)

    async def release(self) -> None:
        if not self._current():
            return
        if "release-drops" in self.client.broken:
            self.client.queue(self.location).remove(self.record)
            return
        self.record.attempts -= 1
        self.record.visible_at = 0.0
