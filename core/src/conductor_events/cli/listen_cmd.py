"""``conductor-events listen``: print messages from an event queue, acking each after printing."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from typing import TYPE_CHECKING

import click

from conductor_events.cli.app import App, config_options, pass_app
from conductor_events.errors import ConductorEventsError

if TYPE_CHECKING:
    from conductor_events.backend import Delivery
    from conductor_events.event_queues import EventQueues

_STOP_CHECK = 0.25
"""Seconds between looks at the stop flag while the queue is idle."""


class ListenTimeout(ConductorEventsError):
    exit_code = 1


def format_delivery(delivery: Delivery, as_json: bool) -> str:
    message = delivery.message
    record = {
        "id": message.id,
        "payload": message.payload,
        "headers": dict(message.headers),
        "key": message.key,
        "attempt": delivery.attempt,
    }
    if delivery.dead_letter_reason is not None:
        record["deadLetterReason"] = delivery.dead_letter_reason
    if as_json:
        return json.dumps(record, ensure_ascii=False)
    lines = [f"message {message.id} (attempt {delivery.attempt})"]
    if message.key is not None:
        lines.append(f"  key: {message.key}")
    if message.headers:
        lines.append(f"  headers: {json.dumps(dict(message.headers), ensure_ascii=False)}")
    if delivery.dead_letter_reason is not None:
        lines.append(f"  dead-letter reason: {delivery.dead_letter_reason}")
    payload = json.dumps(message.payload, indent=2, ensure_ascii=False)
    lines.append("  payload: " + payload.replace("\n", "\n  "))
    return "\n".join(lines)


async def consume(
    queues: EventQueues, event: str, count: int | None, timeout: float | None, as_json: bool
) -> int:
    """Print and ack messages until ``count``, ``timeout``, or SIGINT/SIGTERM; return how many.

    A stop signal is acted on between messages: the message in hand is printed and acked
    first, and prefetched ones go back to the queue when the subscription closes. The handler
    is a plain Python signal handler, not the event loop's: when messages keep coming, receive
    and ack may complete without the loop ever polling for signals, and a loop-level handler
    would only run once the queue ran dry.
    """
    from conductor_events.backend import SubscribeOptions

    stop = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda *_: stop.set())
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    deadline = None if timeout is None else time.monotonic() + timeout
    received = 0
    options = SubscribeOptions(max_in_flight=1, prefetch=min(count or 10, 10), drain_timeout=5)
    try:
        async with await queues.subscribe(event, options) as subscription:
            while not stop.is_set() and (count is None or received < count):
                wait = _STOP_CHECK
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        break
                delivery = await subscription.receive(timeout=wait)
                if delivery is None:
                    continue
                click.echo(format_delivery(delivery, as_json))
                await delivery.ack()
                received += 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if count is not None and received < count and not stop.is_set():
        raise ListenTimeout(
            f"timed out after {timeout:g}s: received {received} of {count} messages"
        )
    if count is None or received < count:
        # Without this line an empty queue and a broken listen look alike: both exit 0 silently.
        stopped = stop.is_set() or timeout is None
        why = "stopped by a signal" if stopped else f"--timeout {timeout:g}s reached"
        plural = "" if received == 1 else "s"
        click.echo(f"received {received} message{plural}; {why}", err=True)
    return received


@click.command()
@click.argument("event")
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many messages.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Stop after this many seconds; with --count, fewer messages is exit 1.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object per line: id, payload, headers, key, attempt.",
)
@config_options
@pass_app
def listen(app: App, event: str, count: int | None, timeout: float | None, as_json: bool) -> None:
    """Consume EVENT (type:location), print each message, then ack it. Ctrl-C or SIGTERM stops
    after the message in hand; nothing is lost."""

    async def run() -> int:
        async with app.event_queues() as queues:
            return await consume(queues, event, count, timeout, as_json)

    asyncio.run(run())
