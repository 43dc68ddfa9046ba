"""Automatic batching of per-message calls into SQS batch calls, with no added latency.

Every ``submit`` queues one entry and returns a future for its outcome. Up to ``concurrency``
sender tasks take whatever is queued, at most ``max_entries`` entries and ``max_bytes`` bytes
per call, and resolve each entry's future. An idle queue sends an entry at once; under load,
entries that arrive while calls are in flight ride in the next call. That is how N concurrent
single-message publishes (EVENT tasks) cost about N/10 requests with no linger timer.

Settlements (acks, visibility changes) arrive staggered, one handler after another, so their
batchers may also be told how many more entries are on their way (``expected``: deliveries
handed out and not yet settled): a sender then waits up to ``linger`` seconds for them before
sending a partial batch. A lone settlement is sent at once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from conductor_events_sqs.signals import Signal

E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class Outcome:
    """Why one entry failed; ``fatal`` when nothing about the entry itself was wrong
    (connection, credentials, missing queue): the same call would fail for any entry."""

    reason: str
    fatal: bool = False


SendBatch = Callable[[Sequence[E]], Awaitable[Sequence["Outcome | None"]]]
"""Sends one batch; returns one outcome per entry, ``None`` for success. Must not raise."""


class Batcher(Generic[E]):
    """Coalesces entries for one queue and one batch API call."""

    def __init__(
        self,
        send: SendBatch[E],
        *,
        max_entries: int = 10,
        max_bytes: int | None = None,
        concurrency: int = 8,
        expected: Callable[[], int] | None = None,
        linger: float = 0.0,
    ) -> None:
        self._send = send
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._concurrency = concurrency
        self._expected = expected
        self._linger = linger
        self._pending: deque[tuple[E, int, asyncio.Future[Outcome | None]]] = deque()
        self._senders: set[asyncio.Task[None]] = set()
        self._arrived = Signal()
        self._sending = 0
        self._unstarted = 0
        """Senders created that have not taken their first batch yet."""
        self.calls = 0
        """Batch calls made so far (for tests and benchmarks)."""

    @property
    def outstanding(self) -> int:
        """Entries queued or in a call that has not returned yet."""
        return len(self._pending) + self._sending

    def submit(self, entry: E, size: int = 0) -> asyncio.Future[Outcome | None]:
        """Queue one entry; the future resolves to ``None`` (done) or its :class:`Outcome`."""
        future: asyncio.Future[Outcome | None] = asyncio.get_running_loop().create_future()
        self._pending.append((entry, size, future))
        if (
            self._expected is None
            or len(self._pending) >= self._max_entries
            or (self._expected() <= 0)
        ):
            self._arrived.fire()  # a lingering sender has what it waits for
        spare = self._unstarted * self._max_entries  # what senders about to start will take
        if len(self._pending) > spare and len(self._senders) < self._concurrency:
            self._unstarted += 1
            task = asyncio.get_running_loop().create_task(self._run())
            self._senders.add(task)
            task.add_done_callback(self._senders.discard)
        return future

    def _take(self) -> list[tuple[E, int, asyncio.Future[Outcome | None]]]:
        batch: list[tuple[E, int, asyncio.Future[Outcome | None]]] = []
        total = 0
        while self._pending and len(batch) < self._max_entries:
            size = self._pending[0][1]
            if batch and self._max_bytes is not None and total + size > self._max_bytes:
                break
            item = self._pending.popleft()
            if item[2].cancelled():
                continue
            batch.append(item)
            total += size
        return batch

    async def _gather_more(self) -> None:
        """Wait up to ``linger`` for entries ``expected`` to arrive, while the batch is short."""
        if self._expected is None or self._linger <= 0:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._linger
        while len(self._pending) < self._max_entries and self._expected() > 0:
            remaining = deadline - loop.time()
            if remaining <= 0 or not await self._arrived.wait(remaining):
                return

    async def _run(self) -> None:
        started = False
        try:
            while self._pending:
                await self._gather_more()
                batch = self._take()
                if not started:
                    started = True
                    self._unstarted -= 1
                if batch:
                    await self._send_batch(batch)
        finally:
            if not started:
                self._unstarted -= 1

    async def _send_batch(self, batch: list[tuple[E, int, asyncio.Future[Outcome | None]]]) -> None:
        self.calls += 1
        self._sending += len(batch)
        try:
            outcomes: Sequence[Outcome | None] = await self._send([e for e, _, _ in batch])
        except asyncio.CancelledError:
            for _, _, future in batch:
                if not future.done():
                    future.cancel()
            raise
        except Exception as exc:  # a send function must not raise; never strand callers
            outcomes = [Outcome(f"{type(exc).__name__}: {exc}", fatal=True)] * len(batch)
        finally:
            self._sending -= len(batch)
        for (_, _, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)

    async def aclose(self) -> None:
        """Wait for the calls in flight to finish."""
        while self._senders:
            await asyncio.gather(*list(self._senders), return_exceptions=True)
