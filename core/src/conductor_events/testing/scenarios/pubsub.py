"""Delivery: every published message reaches a subscriber, on its own location, and only once
consumed. Ported from Watermill's universal Pub/Sub tests."""

from __future__ import annotations

import asyncio
import uuid

from conductor_events.backend import Delivery, Subscription
from conductor_events.errors import MalformedSinkError
from conductor_events.messages import Message
from conductor_events.testing import requirements as needs
from conductor_events.testing.consume import (
    QUIET_WINDOW,
    Consumed,
    consume,
    expect_nothing,
    make_messages,
    publish_and_subscribe,
)
from conductor_events.testing.harness import PUBLISH_BATCH, Harness, check_confirmed
from conductor_events.testing.scenario import scenario


@scenario()
async def registration(h: Harness) -> None:
    """The plugin registers the type with a settings model the properties validate against,
    sinks resolve to its client, an empty location is refused with MalformedSinkError, and a
    fresh location from ``make_location`` is empty (so runs cannot see each other's messages).
    """
    registered = h.plugins.queue_type(h.queue_type)
    assert registered is not None, f"queue type {h.queue_type!r} is not registered"
    settings = h.config.settings(h.queue_type)
    assert isinstance(settings, registered.queue_type.settings), (
        f"the settings of {h.queue_type!r} are not an instance of its settings model"
    )
    location = await h.location("registration")
    resolved = h.queues.resolve(h.sink(location))
    assert resolved.client is h.client, "sinks of one type must share the type's one client"
    canonical = h.client.parse_location(resolved.location)
    assert canonical == resolved.location, (
        f"parse_location is not stable: {resolved.location!r} parses to {canonical!r}"
    )
    try:
        h.queues.resolve(f"{h.queue_type}:")
    except MalformedSinkError:
        pass
    else:
        raise AssertionError(f"the empty location '{h.queue_type}:' was accepted")
    subscription = await h.subscribe(location)
    await expect_nothing(h, subscription, QUIET_WINDOW, "a fresh location is not empty")


@scenario()
async def publish_subscribe(h: Harness) -> None:
    """Messages published before subscribing (after, on a non-persistent backend) all arrive,
    payloads and headers intact."""
    location = await h.location("pubsub")
    messages = make_messages(h.counts.publish_subscribe, "publish-subscribe")
    subscriptions = await publish_and_subscribe(h, location, messages)
    await consume(h, subscriptions, messages, what="publish-subscribe")


@scenario()
async def concurrent_subscribe(h: Harness) -> None:
    """Many parallel publishers, many competing subscribers: every message is consumed."""
    counts = h.counts
    location = await h.location("concurrent")
    messages = make_messages(counts.concurrent_messages, "concurrent-subscribe")
    shares = [
        messages[i :: counts.concurrent_publishers] for i in range(counts.concurrent_publishers)
    ]

    async def publisher(share: list[Message]) -> None:
        for message in share:
            result = await h.publish(location, [message])
            check_confirmed(result, [message], "concurrent publish")

    async def publish() -> None:
        await asyncio.gather(*(publisher(share) for share in shares))

    if h.capabilities.persistent:
        await publish()
    subscriptions = await h.subscribe_many(location, counts.concurrent_subscribers)
    if not h.capabilities.persistent:
        await publish()
    await consume(h, subscriptions, messages, what="concurrent subscribe")


@scenario()
async def multiple_topics(h: Harness) -> None:
    """Many locations, their publishes interleaved, consumed concurrently: each subscription
    gets exactly its own location's messages (a foreign message fails the consume)."""
    counts = h.counts
    locations = [await h.location(f"topic{index}") for index in range(counts.topics)]
    batches = [
        make_messages(counts.messages_per_topic, f"topic-{index}") for index in range(counts.topics)
    ]

    async def subscribe_all() -> list[Subscription]:
        return list(await asyncio.gather(*(h.subscribe(location) for location in locations)))

    subscriptions = [] if h.capabilities.persistent else await subscribe_all()
    for start in range(0, counts.messages_per_topic, PUBLISH_BATCH):
        for location, messages in zip(locations, batches, strict=True):
            await h.publish_all(location, messages[start : start + PUBLISH_BATCH])
    subscriptions = subscriptions or await subscribe_all()
    await asyncio.gather(
        *(
            consume(h, [subscription], messages, what=f"location {index} of {counts.topics}")
            for index, (subscription, messages) in enumerate(
                zip(subscriptions, batches, strict=True)
            )
        )
    )


@scenario()
async def topic_isolation(h: Harness) -> None:
    """One message on each of two locations: each subscription receives its own and nothing
    else."""
    first, second = await h.location("isolation-a"), await h.location("isolation-b")
    first_messages = make_messages(1, "isolation-a")
    second_messages = make_messages(1, "isolation-b")
    [first_sub] = await publish_and_subscribe(h, first, first_messages)
    [second_sub] = await publish_and_subscribe(h, second, second_messages)
    await consume(h, [first_sub], first_messages, what="isolation, first location")
    await consume(h, [second_sub], second_messages, what="isolation, second location")
    await asyncio.gather(
        expect_nothing(
            h,
            first_sub,
            QUIET_WINDOW,
            "isolation: an extra message reached the first location",
            tolerate={first_messages[0].id},
        ),
        expect_nothing(
            h,
            second_sub,
            QUIET_WINDOW,
            "isolation: an extra message reached the second location",
            tolerate={second_messages[0].id},
        ),
    )


@scenario()
async def resend_on_error(h: Harness) -> None:
    """The first two deliveries are nacked: nack means redelivery, so every message is still
    consumed, and a redelivery's ``attempt`` is higher than the nacked delivery's."""
    location = await h.location("resend")
    messages = make_messages(h.counts.resend_on_error, "resend-on-error")
    nacked: dict[str, int] = {}
    redelivered: dict[str, int] = {}

    async def handler(delivery: Delivery) -> bool:
        message_id = delivery.message.id
        if len(nacked) < 2 and message_id not in nacked:
            nacked[message_id] = delivery.attempt
            await delivery.nack(reason="conformance: simulated handler error")
            return False
        if message_id in nacked:
            redelivered[message_id] = delivery.attempt
        await delivery.ack()
        return True

    subscriptions = await publish_and_subscribe(h, location, messages)
    await consume(h, subscriptions, messages, what="resend on error", handler=handler)
    for message_id, attempt in nacked.items():
        again = redelivered[message_id]
        assert again > attempt, (
            f"message {message_id} was nacked on attempt {attempt} and came back as attempt "
            f"{again}: Delivery.attempt must count deliveries"
        )


@scenario()
async def continue_after_errors(h: Harness) -> None:
    """Subscribers that nack delivery after delivery, then close: each nack is followed by
    another delivery, and a last subscriber still consumes every message.

    A message is nacked at most ``max_deliveries - 1`` times, so the attempt limit never
    dead-letters it here.
    """
    counts = h.counts
    location = await h.location("errors")
    messages = make_messages(counts.errors_messages, "continue-after-errors")
    expected = {message.id for message in messages}
    support = h.capabilities.dead_letter
    limit = support.max_deliveries if support is not None else None
    per_message = (limit - 1) if limit is not None else counts.nacks_per_subscriber
    budget = per_message * len(messages) // counts.error_subscribers
    nacks_each = min(counts.nacks_per_subscriber, budget)
    nacked: dict[str, int] = {}
    consumed = Consumed()
    persistent = h.capabilities.persistent

    if persistent:
        await h.publish_all(location, messages)
        pending = []
    else:
        pending = await h.subscribe_many(location, counts.error_subscribers + 1)
        await h.publish_all(location, messages)
    for index in range(counts.error_subscribers):
        subscription = (await h.subscribe(location)) if persistent else pending[index]
        nacks = 0
        while nacks < nacks_each:
            delivery = await subscription.receive(timeout=h.idle_timeout)
            if delivery is None:
                raise AssertionError(
                    f"continue after errors: subscriber {index + 1} nacked {nacks} deliveries, "
                    f"then got nothing for {h.idle_timeout:g}s"
                )
            message_id = delivery.message.id
            assert message_id in expected, f"received foreign message {message_id}"
            if message_id not in consumed.messages and nacked.get(message_id, 0) < per_message:
                nacked[message_id] = nacked.get(message_id, 0) + 1
                nacks += 1
                await delivery.nack(reason="conformance: simulated handler error")
            else:
                await delivery.ack()
                consumed.messages.setdefault(message_id, delivery.message)
        await subscription.close()
    last = (await h.subscribe(location)) if persistent else pending[-1]
    await consume(h, [last], messages, what="continue after errors", consumed=consumed)


@scenario(needs.persistent)
async def publisher_close(h: Harness) -> None:
    """Many clients publish in parallel, then close: a message confirmed by ``publish`` must
    not be lost when its client closes (buffered producers flush or fail the publish)."""
    counts = h.counts
    location = await h.location("publisher-close")
    messages = make_messages(counts.publisher_close, "publisher-close")
    publishers = counts.publisher_close_publishers

    async def publisher(index: int) -> None:
        queues = h.new_queues()
        await h.publish_all(location, messages[index::publishers], queues=queues, batch=1)
        await queues.aclose()

    await asyncio.gather(*(publisher(index) for index in range(publishers)))
    subscription = await h.subscribe(location)
    await consume(h, [subscription], messages, what="publisher close")


@scenario(needs.consumer_groups)
async def consumer_groups(h: Harness) -> None:
    """Two consumer groups on one location each receive every message. Groups subscribe
    before the publish, as topic subscriptions must exist to get a copy."""
    location = await h.location("groups")
    messages = make_messages(h.counts.consumer_groups, "consumer-groups")
    suffix = uuid.uuid4().hex[:8]
    first_group = await h.suite.make_group(h, location, f"conformance-a-{suffix}")
    second_group = await h.suite.make_group(h, location, f"conformance-b-{suffix}")
    first = await h.subscribe(location, group=first_group)
    second = await h.subscribe(location, group=second_group)
    await h.publish_all(location, messages)
    await asyncio.gather(
        consume(h, [first], messages, what=f"consumer group {first_group}"),
        consume(h, [second], messages, what=f"consumer group {second_group}"),
    )


@scenario(needs.replay)
async def new_subscriber_receives_old_messages(h: Harness) -> None:
    """On a log: a new subscription without a group reads from the start, so it receives
    the messages an earlier subscription already consumed."""
    location = await h.location("replay")
    messages = make_messages(h.counts.replay, "replay")
    await h.publish_all(location, messages)
    async with await h.subscribe(location) as first:
        await consume(h, [first], messages, what="replay, first subscriber")
    second = await h.subscribe(location)
    await consume(h, [second], messages, what="replay, a new subscriber reading from the start")
