"""A bounded consume loop for tests and benchmarks: receive deliveries of one event and run
each through a :class:`~conductor_events_handlers.processor.HandlerProcessor`.

It processes what is waiting on a queue and stops, which is what a test or a benchmark needs;
a long-running service runs its own loop around
:meth:`~conductor_events_handlers.processor.HandlerProcessor.process` (signals, several
events, health).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conductor_events.backend import Delivery, Subscription
    from conductor_events_handlers.processor import HandlerProcessor, MessageOutcome


async def consume(
    subscription: Subscription,
    event: str,
    processor: HandlerProcessor,
    *,
    count: int | None = None,
    idle_timeout: float = 1.0,
    concurrency: int = 1,
) -> list[MessageOutcome]:
    """Process deliveries until ``count`` messages are done, or none arrives for
    ``idle_timeout`` seconds. Up to ``concurrency`` messages are processed at once.

    Returns the outcomes in the order processing finished.
    """
    outcomes: list[MessageOutcome] = []
    slots = asyncio.Semaphore(concurrency)
    running: set[asyncio.Task[None]] = set()

    async def handle(delivery: Delivery) -> None:
        try:
            outcomes.append(await processor.process(event, delivery))
        finally:
            slots.release()

    received = 0
    while count is None or received < count:
        await slots.acquire()
        delivery = await subscription.receive(timeout=idle_timeout)
        if delivery is None:
            slots.release()
            break
        received += 1
        task = asyncio.create_task(handle(delivery))
        running.add(task)
        task.add_done_callback(running.discard)
    if running:
        await asyncio.gather(*running)
    return outcomes
