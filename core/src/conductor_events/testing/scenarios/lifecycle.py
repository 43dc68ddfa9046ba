"""Subscriptions and brokers coming and going: nothing a closing subscription held is lost or
left invisible, closing ends receiving promptly, and a broker restart loses nothing."""

from __future__ import annotations

import asyncio
import time

from conductor_events.backend import Delivery, DeliveryState, Subscription
from conductor_events.errors import DeliveryStateError
from conductor_events.messages import Message
from conductor_events.testing import requirements as needs
from conductor_events.testing.consume import (
    POLL,
    QUIET_WINDOW,
    Consumed,
    consume,
    expect_nothing,
    make_messages,
    publish_and_subscribe,
    receive_one,
)
from conductor_events.testing.harness import PUBLISH_BATCH, Harness
from conductor_events.testing.scenario import scenario


def prompt_timeout(h: Harness) -> float:
    """How soon messages returned by a closing subscription must be receivable again.

    Half the visibility timeout when one is declared: a message left invisible instead of
    returned comes back only when its visibility timeout passes, so it must not pass for a
    returned one (scenarios keep the time between receiving and closing short for this).
    """
    visibility = h.capabilities.visibility_timeout
    if visibility is None:
        return h.idle_timeout
    return min(h.idle_timeout, 0.5 * visibility)


def assert_returned(delivery: Delivery, what: str) -> None:
    assert delivery.state is DeliveryState.RELEASED, (
        f"{what}: an unsettled delivery was left {delivery.state.value} by close(), "
        "not returned to the queue"
    )


async def subscribe_later(h: Harness, location: str, already: Subscription | None) -> Subscription:
    """The subscription that takes over: opened now on a persistent backend; on one that is
    not, it is ``already`` (opened before the messages were published)."""
    return already if already is not None else await h.subscribe(location)


@scenario(needs.persistent)
async def continue_after_subscribe_close(h: Harness) -> None:
    """Subscriptions opened and closed one after another each consume a part, and close with
    one delivery unsettled: that one is returned, and no message is lost across restarts."""
    location = await h.location("restarts")
    messages = make_messages(h.counts.continue_after_close, "continue-after-close")
    await h.publish_all(location, messages)
    per_round = max(5, len(messages) // 10)
    consumed = Consumed()
    rounds = 0
    while len(consumed.messages) < len(messages):
        rounds += 1
        assert rounds <= 3 * len(messages) // per_round + 3, (
            f"continue after close: {rounds} subscriptions consumed only "
            f"{len(consumed.messages)} of {len(messages)} messages"
        )
        subscription = await h.subscribe(location, drain_timeout=0)
        await consume(
            h,
            [subscription],
            messages,
            what=f"continue after close, subscription {rounds}",
            consumed=consumed,
            limit=per_round,
        )
        held = None
        if len(consumed.messages) < len(messages):
            held = await receive_one(h, subscription, f"subscription {rounds}, one more")
        await subscription.close()
        if held is not None:
            assert_returned(held, f"continue after close, subscription {rounds}")


@scenario()
async def concurrent_close(h: Harness) -> None:
    """Subscriptions opened, receiving and closed concurrently; then every message reaches a
    fresh subscription (what the closing ones held was returned)."""
    counts = h.counts
    location = await h.location("concurrent-close")
    messages = make_messages(counts.concurrent_close_messages, "concurrent-close")
    if h.capabilities.persistent:
        await h.publish_all(location, messages)

    async def open_receive_close() -> Delivery | None:
        subscription = await h.subscribe(location, drain_timeout=0)
        delivery = await subscription.receive(timeout=POLL)
        await subscription.close()
        return delivery

    held = await asyncio.gather(
        *(open_receive_close() for _ in range(counts.concurrent_close_subscribers))
    )
    for delivery in held:
        if delivery is not None:
            assert_returned(delivery, "concurrent close")
    fresh = await h.subscribe(location)
    if not h.capabilities.persistent:
        await h.publish_all(location, messages)
    await consume(h, [fresh], messages, what="after concurrent close, a fresh subscription")


@scenario()
async def message_ctx(h: Harness) -> None:
    """Ack settles a message for good: it is not delivered again (watched for 1.5 visibility
    timeouts when one is declared, since an ack that did nothing shows only after that), and
    settling twice is refused. Closing a subscription returns its in-flight message, which a
    new subscription then receives promptly."""
    location = await h.location("message-ctx")
    first_message, second_message = make_messages(2, "message-ctx")
    [subscription] = await publish_and_subscribe(
        h, location, [first_message, second_message], drain_timeout=0
    )
    later = None if h.capabilities.persistent else await h.subscribe(location)
    delivered: dict[str, Delivery] = {}
    while len(delivered) < 2:
        delivery = await receive_one(h, subscription, "message ctx")
        delivered.setdefault(delivery.message.id, delivery)
    acked = delivered[first_message.id]
    in_flight = delivered[second_message.id]
    await acked.ack()
    assert acked.state is DeliveryState.ACKED
    assert acked.settled
    try:
        await acked.ack()
    except DeliveryStateError:
        pass
    else:
        raise AssertionError("message ctx: acking a delivery twice was not refused")
    await subscription.close()
    assert_returned(in_flight, "message ctx")
    successor = await subscribe_later(h, location, later)
    await consume(
        h,
        [successor],
        [second_message],
        what="message ctx: the message returned by close",
        idle_timeout=prompt_timeout(h),
    )
    visibility = h.capabilities.visibility_timeout
    window = QUIET_WINDOW if visibility is None else 1.5 * visibility
    await expect_nothing(
        h,
        successor,
        window,
        "message ctx: a message came back after it was acked",
        tolerate={second_message.id},
    )


@scenario()
async def subscribe_ctx(h: Harness) -> None:
    """Closing a subscription ends a pending ``receive`` promptly (it returns ``None``) and
    iteration stops; a new subscription then receives every message."""
    location = await h.location("subscribe-ctx")
    subscription = await h.subscribe(location)
    pending = asyncio.create_task(subscription.receive())
    await asyncio.sleep(POLL)
    started = time.monotonic()
    await subscription.close()
    try:
        result = await asyncio.wait_for(pending, h.idle_timeout)
    except TimeoutError:
        raise AssertionError(
            f"subscribe ctx: a receive() still waited {h.idle_timeout:g}s after close()"
        ) from None
    assert result is None, f"subscribe ctx: receive() after close returned {result!r}"
    async for delivery in subscription:
        raise AssertionError(f"subscribe ctx: a closed subscription yielded {delivery!r}")
    elapsed = time.monotonic() - started
    assert elapsed < h.idle_timeout, f"closing took {elapsed:.1f}s"
    messages = make_messages(h.counts.subscribe_ctx, "subscribe-ctx")
    subscriptions = await publish_and_subscribe(h, location, messages)
    await consume(h, subscriptions, messages, what="subscribe ctx, a new subscription")


@scenario()
async def graceful_drain(h: Harness) -> None:
    """Close with deliveries in flight and prefetched: close waits for in-flight ones to be
    settled (an ack during the drain works), returns what is still unsettled and what was
    prefetched; none is lost and none stays invisible, as a new subscription gets them all
    promptly."""
    location = await h.location("drain")
    messages = make_messages(10, "graceful-drain")
    drain = 0.5
    [subscription] = await publish_and_subscribe(
        h, location, messages, prefetch=10, max_in_flight=10, drain_timeout=drain
    )
    later = None if h.capabilities.persistent else await h.subscribe(location)
    held: dict[str, Delivery] = {}
    while len(held) < 3:
        delivery = await receive_one(h, subscription, "graceful drain")
        held.setdefault(delivery.message.id, delivery)
    acked_before, acked_during, unsettled = held.values()
    await acked_before.ack()
    closing = asyncio.create_task(subscription.close())
    await asyncio.sleep(0.05)
    assert not closing.done(), "close() returned without waiting for in-flight deliveries"
    await acked_during.ack()
    await asyncio.wait_for(closing, drain + h.idle_timeout)
    assert acked_during.state is DeliveryState.ACKED
    assert_returned(unsettled, "graceful drain")
    successor = await subscribe_later(h, location, later)
    done = Consumed()
    for delivery in (acked_before, acked_during):
        done.messages[delivery.message.id] = delivery.message
    await consume(
        h,
        [successor],
        messages,
        what="graceful drain: returned and prefetched messages reach a new subscription",
        consumed=done,
        idle_timeout=prompt_timeout(h),
    )


@scenario(needs.persistent)
async def consumer_closed_mid_delivery(h: Harness) -> None:
    """A consumer shut down while its handlers still work on deliveries (close's drain runs
    out before they finish) and others wait in its prefetch buffer, its client closed after
    the subscription, as a service stopping does: a consumer on another client then receives
    every message that was not acked (duplicates allowed), and a handler that finishes after
    the shutdown is told its ack came too late rather than having it silently count."""
    location = await h.location("closed-mid-delivery")
    messages = make_messages(8, "closed-mid-delivery")
    await h.publish_all(location, messages)
    stopping = h.new_queues()
    subscription = await h.subscribe(
        location, queues=stopping, prefetch=4, max_in_flight=3, drain_timeout=0.2
    )
    held: dict[str, Delivery] = {}
    while len(held) < 3:
        delivery = await receive_one(h, subscription, "consumer closed mid-delivery")
        held.setdefault(delivery.message.id, delivery)
    acked, *working = held.values()
    await acked.ack()
    finish = asyncio.Event()

    async def handler(delivery: Delivery) -> bool:
        """A handler still busy when the consumer stops; True when its late ack counted."""
        await finish.wait()
        try:
            await delivery.ack()
        except DeliveryStateError:
            return False
        return True

    handlers = [asyncio.create_task(handler(delivery)) for delivery in working]
    await subscription.close()
    await stopping.aclose()
    finish.set()
    late_acks = await asyncio.gather(*handlers)
    for delivery, counted in zip(working, late_acks, strict=True):
        assert_returned(delivery, "consumer closed mid-delivery")
        assert not counted, (
            f"consumer closed mid-delivery: message {delivery.message.id}, returned by close, "
            "was acked afterwards as if still held"
        )
    successor = await h.subscribe(location, queues=h.new_queues())
    done = Consumed()
    done.messages[acked.message.id] = acked.message
    await consume(
        h,
        [successor],
        messages,
        what="consumer closed mid-delivery: a consumer on another client gets every message "
        "not acked (in flight, prefetched or never fetched)",
        consumed=done,
    )


@scenario(needs.restartable)
async def reconnect(h: Harness) -> None:
    """The broker restarts twice while messages stream through: publishes that fail during
    the restart are retried (by the kit, as a caller would), the subscription carries on by
    itself, and no message is lost."""
    restart = h.capabilities.restart_broker
    assert restart is not None
    location = await h.location("reconnect")
    messages = make_messages(h.counts.reconnect, "reconnect")
    subscription = await h.subscribe(location)
    thirds = {len(messages) // 3, 2 * len(messages) // 3}

    async def publish_with_retry(chunk: list[Message]) -> None:
        deadline = time.monotonic() + h.idle_timeout
        remaining = chunk
        while remaining:
            failure = ""
            try:
                result = await h.publish(location, remaining)
                failure = result.failure_summary()
                failed = {f.message_id for f in result.failed}
                remaining = [message for message in remaining if message.id in failed]
            except Exception as exc:
                failure = f"{type(exc).__name__}: {exc}"
            if remaining:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"reconnect: publishing still failed {h.idle_timeout:g}s after the "
                        f"restart: {failure}"
                    )
                await asyncio.sleep(0.1)

    async def publisher() -> None:
        for start in range(0, len(messages), PUBLISH_BATCH):
            if any(start <= third < start + PUBLISH_BATCH for third in thirds):
                await restart(h)
            await publish_with_retry(messages[start : start + PUBLISH_BATCH])

    await asyncio.gather(
        publisher(), consume(h, [subscription], messages, what="reconnect after restarts")
    )
