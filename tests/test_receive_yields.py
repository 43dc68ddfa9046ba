"""Receiving lets the event loop run other tasks, even when every delivery comes from a buffer.

Handing out a buffered delivery completes without suspending, so a consumer whose handler does
not wait for I/O would hold the event loop until the buffer is empty: a backend's background
work (Kafka's offset commits and heartbeats) and the service's other tasks would stall that
long. ``receive`` and ``receive_batch`` yield to the loop at least every
``Subscription.yield_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from conductor_events.backend import Delivery, SubscribeOptions
from conductor_events.event_queues import EventQueues
from conductor_events.messages import Message

BACKLOG = 200
HANDLER_WORK = 0.0005
"""Seconds of synchronous work per delivery: a handler that computes without awaiting."""


@pytest.mark.parametrize("batch", [None, 5], ids=["receive", "receive_batch"])
async def test_other_tasks_run_while_a_buffered_backlog_is_consumed(
    queues: EventQueues, batch: int | None
) -> None:
    messages = [Message({"n": n}) for n in range(BACKLOG)]
    assert (await queues.publish("local:q", messages)).ok
    options = SubscribeOptions(prefetch=BACKLOG, max_in_flight=BACKLOG)
    received: list[Delivery] = []
    seen_by_other_task: list[int] = []

    async def other_task() -> None:
        while True:
            seen_by_other_task.append(len(received))
            await asyncio.sleep(0)

    async with await queues.subscribe("local:q", options) as subscription:
        first = await subscription.receive(timeout=5)
        assert first is not None
        received.append(first)
        # One fetch claimed the whole backlog: from here on every delivery is buffered, and
        # nothing in the loop below waits for I/O.
        assert subscription.buffered == BACKLOG - 1
        other = asyncio.create_task(other_task())
        while len(received) < BACKLOG:
            if batch is None:
                delivery = await subscription.receive(timeout=5)
                got = [] if delivery is None else [delivery]
            else:
                got = await subscription.receive_batch(batch, timeout=5)
            assert got, f"the buffer ran dry after {len(received)} of {BACKLOG}"
            time.sleep(HANDLER_WORK * len(got))  # noqa: ASYNC251 - handlers computing, never awaiting
            received.extend(got)
        other.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await other
        await subscription.ack_many(received)
    assert {d.message.id for d in received} == {m.id for m in messages}
    during = [count for count in seen_by_other_task if count < BACKLOG]
    assert during, "the other task ran only once the whole buffered backlog was consumed"
