"""Keeping messages in hand invisible: their visibility timeout (or lock) is extended while
they wait for a condition engine or run their handlers.

A broker delivers a message again once its visibility timeout passes unsettled. A message
that waits behind slow conditions, or whose actions take long, would then be handled twice at
once, and its first settlement would fail. :class:`VisibilityRenewer` extends every delivery
held longer than ``interval`` through :meth:`~conductor_events.backend.Delivery.extend`, by
three times ``interval``, and again every ``interval``, until it is settled. Messages handled
within ``interval`` cost nothing: one task per renewer wakes every half interval while
something is held, and stops when nothing is.

An extension that fails is logged and retried at the next interval; it never fails the
message (at worst the broker delivers it again, and the execution records keep its completed
actions from running twice).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import TYPE_CHECKING

import structlog

from conductor_events.errors import DeliveryStateError

if TYPE_CHECKING:
    from conductor_events.backend import Delivery

log = structlog.get_logger(__name__)

EXTEND_FACTOR = 3
"""An extension lasts this many intervals, so two missed renewals in a row still hold."""


class VisibilityRenewer:
    """Extends the deliveries it holds every ``interval`` seconds until they are dropped.

    Attributes:
        counts: ``extended`` and ``failed`` extensions so far.
    """

    def __init__(self, interval: float) -> None:
        if interval <= 0:
            raise ValueError(f"the renewal interval must be positive, not {interval}")
        self.interval = interval
        self.extend_by = EXTEND_FACTOR * interval
        self.counts: Counter[str] = Counter()
        self._due: dict[Delivery, float] = {}
        self._task: asyncio.Task[None] | None = None

    def hold(self, delivery: Delivery) -> None:
        """Keep ``delivery`` invisible until :meth:`drop` (call on the event loop)."""
        self._due[delivery] = time.monotonic() + self.interval
        task = self._task
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            self._task = asyncio.create_task(self._run(), name="visibility renewal")

    def drop(self, delivery: Delivery) -> None:
        """Stop extending ``delivery`` (it is about to be settled, or was returned)."""
        self._due.pop(delivery, None)

    @property
    def held(self) -> int:
        return len(self._due)

    async def _run(self) -> None:
        while self._due:
            await asyncio.sleep(self.interval / 2)
            now = time.monotonic()
            due = []
            for delivery, at in list(self._due.items()):
                if delivery.settled:  # settled without being dropped: nothing to keep
                    del self._due[delivery]
                elif at <= now:
                    self._due[delivery] = now + self.interval
                    due.append(delivery)
            if due:
                await asyncio.gather(*(self._extend(delivery) for delivery in due))

    async def _extend(self, delivery: Delivery) -> None:
        if delivery.settled or delivery not in self._due:
            return
        try:
            await delivery.extend(self.extend_by)
        except DeliveryStateError:  # settled while we were getting to it
            return
        except Exception as exc:
            self.counts["failed"] += 1
            log.warning(
                "handlers.message.extend_failed",
                message_id=delivery.message.id,
                error=f"{type(exc).__name__}: {exc}",
                hint="the broker may deliver the message again while it is in hand",
            )
            return
        self.counts["extended"] += 1
        log.debug(
            "handlers.message.extended",
            message_id=delivery.message.id,
            seconds=self.extend_by,
        )
