"""Consuming from tansu: groups, commits only up to the lowest unacked offset, nack redelivery,
dead-lettering, payload decoding."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from conductor_events_kafka import wire
from conductor_events_kafka.client import KafkaQueueClient
from conductor_events_kafka.consume import KafkaHandle, KafkaSubscription
from conductor_events_kafka.testing import Tansu
from conductor_events_kafka.testing import unique_name as unique
from structlog.testing import capture_logs

from conductor_events.backend import Delivery, DeliveryState, SubscribeOptions
from conductor_events.messages import Message

MakeClient = Callable[..., KafkaQueueClient]


WAIT = 15.0


async def raw_producer(tansu: Tansu) -> Any:
    from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]

    producer = AIOKafkaProducer(bootstrap_servers=tansu.bootstrap, acks="all")
    await producer.start()
    return producer


async def committed(tansu: Tansu, topic: str, group: str) -> dict[int, int | None]:
    """The group's committed offset of each partition of ``topic``, read with plain aiokafka."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=tansu.bootstrap, group_id=group)
    await consumer.start()
    try:
        await consumer.topics()  # loads the cluster metadata
        partitions = consumer.partitions_for_topic(topic) or set()
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in sorted(partitions)}
    finally:
        await consumer.stop()


async def subscribe(client: KafkaQueueClient, topic: str, **options: Any) -> KafkaSubscription:
    subscription = await client.subscribe(topic, SubscribeOptions(**options))
    assert isinstance(subscription, KafkaSubscription)
    return subscription


async def receive(subscription: Any, what: str) -> Delivery:
    delivery = await subscription.receive(timeout=WAIT)
    assert delivery is not None, f"{what}: nothing arrived within {WAIT:g}s"
    assert isinstance(delivery, Delivery)
    return delivery


def raw(delivery: Delivery) -> KafkaHandle:
    """The Kafka record behind a delivery."""
    assert isinstance(delivery.handle, KafkaHandle)
    return delivery.handle


async def publish(client: KafkaQueueClient, topic: str, messages: list[Message]) -> None:
    result = await client.publish(topic, messages)
    assert result.ok, result.failure_summary()


async def test_round_trip_keeps_id_key_headers_and_payload(client: KafkaQueueClient) -> None:
    topic = unique()
    sent = [
        Message(payload={"n": 1, "text": "Grüße"}, headers={"h": "v"}, key="order-1"),
        Message(payload=[1, 2, 3]),
    ]
    await publish(client, topic, sent)
    async with await client.subscribe(topic, SubscribeOptions(group=unique("g"))) as sub:
        got: dict[str, Delivery] = {}
        while len(got) < 2:
            delivery = await receive(sub, "round trip")
            got[delivery.message.id] = delivery
            await delivery.ack()
    first, second = got[sent[0].id], got[sent[1].id]
    assert first.message.payload == {"n": 1, "text": "Grüße"}
    assert dict(first.message.headers) == {"h": "v"}
    assert first.message.key == "order-1"
    assert raw(first).record_key == b"order-1"
    assert second.message.payload == [1, 2, 3]
    assert second.message.key is None, "a message without key has its id as record key only"
    assert raw(second).record_key == sent[1].id.encode()


async def test_a_received_delivery_is_the_core_s_with_the_record_in_its_handle(
    client: KafkaQueueClient,
) -> None:
    topic = unique()
    await publish(client, topic, [Message(payload={"n": 1}, key="k")])
    async with await client.subscribe(topic, SubscribeOptions(group=unique("g"))) as sub:
        delivery = await receive(sub, "one record")
        assert type(delivery) is Delivery
        assert not delivery.settled
        assert (delivery.attempt, delivery.dead_letter_reason) == (1, None)
        record = raw(delivery)
        assert (record.topic, record.partition, record.offset) == (topic, 0, 0)
        assert record.record_key == b"k"
        assert record.value == b'{"n":1}'
        await delivery.ack()
        assert delivery.state is DeliveryState.ACKED


async def test_foreign_records_not_json_or_not_utf8_are_delivered(
    tansu: Tansu, client: KafkaQueueClient
) -> None:
    topic = unique()
    producer = await raw_producer(tansu)
    try:
        await producer.send_and_wait(topic, b"plain text, not JSON", key=b"k1", partition=0)
        await producer.send_and_wait(topic, b"\xff\xfe bad utf-8", partition=0)
        await producer.send_and_wait(topic, None, key=b"tombstone", partition=0)
        await producer.send_and_wait(topic, b"{}", headers=[(wire.MESSAGE_ID, b"")], partition=0)
    finally:
        await producer.stop()
    async with await client.subscribe(topic, SubscribeOptions(group=unique("g"))) as sub:
        deliveries = [await receive(sub, f"foreign record {i}") for i in range(4)]
        for delivery in deliveries:
            await delivery.ack()
    text, binary, tombstone, empty_id = deliveries
    assert text.message.payload == "plain text, not JSON"
    assert text.message.key == "k1"
    assert text.message.id == f"0-{raw(text).offset}", "records without an id: <partition>-<offset>"
    assert isinstance(binary.message.payload, str)
    assert raw(binary).value == b"\xff\xfe bad utf-8", "the raw bytes stay on the delivery"
    assert tombstone.message.payload is None
    assert empty_id.message.id == f"0-{raw(empty_id).offset}", "an empty id header is no id"


async def test_conductor_payload_format(make_client: MakeClient) -> None:
    client = make_client(payload_format="conductor")
    topic = unique()
    message = Message(payload={"workflowId": "w1"}, headers={"source": "s"}, key="k")
    await publish(client, topic, [message])
    async with await client.subscribe(topic, SubscribeOptions(group=unique("g"))) as sub:
        delivery = await receive(sub, "conductor shape")
        await delivery.ack()
    assert delivery.message.payload == {
        "key": "k",
        "headers": {"source": "s"},
        "payload": {"workflowId": "w1"},
    }


async def test_commit_stops_at_lowest_unacked_offset(tansu: Tansu, make_client: MakeClient) -> None:
    client = make_client()
    topic, group = unique(), unique("g")
    producer = await raw_producer(tansu)
    try:
        for n in range(5):
            await producer.send_and_wait(topic, json.dumps({"n": n}).encode(), partition=0)
    finally:
        await producer.stop()
    sub = await subscribe(client, topic, group=group, prefetch=5)
    deliveries = [await receive(sub, f"record {n}") for n in range(5)]
    assert [raw(d).offset for d in deliveries] == [0, 1, 2, 3, 4]
    # Ack everything but offset 1, out of order: the commit may not pass offset 1.
    for index in (4, 0, 3, 2):
        await deliveries[index].ack()
    await sub.commit()
    assert (await committed(tansu, topic, group))[0] == 1
    # Closing returns offset 1 (drain_timeout passes), the final commit stays at 1.
    sub.options = SubscribeOptions(group=group, drain_timeout=0)
    await sub.close()
    assert (await committed(tansu, topic, group))[0] == 1
    # The next consumer of the group starts at offset 1: nothing unprocessed is skipped.
    async with await subscribe(client, topic, group=group) as again:
        first = await receive(again, "redelivery after close")
        assert raw(first).offset == 1
        assert first.message.payload == {"n": 1}
        await first.ack()
        rest = [await receive(again, "records acked before, delivered again") for _ in range(3)]
        for delivery in rest:
            await delivery.ack()
        assert [raw(d).offset for d in rest] == [2, 3, 4]
        await again.commit()
    assert (await committed(tansu, topic, group))[0] == 5


async def test_nack_redelivers_after_delay_without_blocking_others(
    client: KafkaQueueClient,
) -> None:
    topic = unique()
    first, second = Message(payload={"n": 1}, key="k"), Message(payload={"n": 2}, key="k")
    await publish(client, topic, [first, second])
    async with await client.subscribe(topic, SubscribeOptions(group=unique("g"))) as sub:
        delivery = await receive(sub, "first delivery")
        assert delivery.message.id == first.id
        await delivery.nack(delay=1.0, reason="try later")
        # The next record of the same partition is not held up by the delayed one.
        other = await receive(sub, "the record after the nacked one")
        assert other.message.id == second.id
        await other.ack()
        again = await receive(sub, "the nacked record, redelivered")
        assert again.message.id == first.id
        assert again.attempt == 2
        await again.ack()


async def test_dead_letter_after_attempt_limit_with_headers(make_client: MakeClient) -> None:
    client = make_client(max_deliveries=2, dlq_topic="{topic}.dlq")
    topic = unique()
    message = Message(payload={"bad": True}, headers={"trace": "t1"}, key="k")
    await publish(client, topic, [message])
    group = unique("g")
    async with await client.subscribe(topic, SubscribeOptions(group=group)) as sub:
        for attempt in (1, 2):
            delivery = await receive(sub, f"attempt {attempt}")
            assert delivery.attempt == attempt
            await delivery.nack(reason="handler exploded")
        origin = delivery
        assert await sub.receive(timeout=0.5) is None, "dead-lettered, not redelivered"
    async with await client.subscribe(f"{topic}.dlq", SubscribeOptions(group=group)) as dlq:
        dead = await receive(dlq, "the dead-lettered record")
        await dead.ack()
    assert dead.message.id == message.id
    assert dead.message.payload == {"bad": True}
    assert dict(dead.message.headers) == {"trace": "t1"}
    assert dead.message.key == "k"
    assert dead.dead_letter_reason == "handler exploded"
    _, own = wire.split_headers(raw(dead).record_headers)
    assert own[wire.DLQ_TOPIC] == topic
    assert own[wire.DLQ_PARTITION] == str(raw(origin).partition)
    assert own[wire.DLQ_OFFSET] == str(raw(origin).offset)
    assert own[wire.DLQ_REASON] == "handler exploded"


async def test_failed_dead_letter_publish_is_not_acked_and_logged(
    make_client: MakeClient, tansu: Tansu
) -> None:
    """The DLQ topic does not exist and may not be created: dead-lettering fails, the record
    is not acked (the commit does not pass it) and comes back; the error is logged."""
    client = make_client(max_deliveries=1, create_topics=False, dlq_topic="missing-dlq-topic")
    topic = unique()
    creator = make_client()
    await publish(creator, topic, [Message(payload={"n": 0})])
    group = unique("g")
    async with await subscribe(client, topic, group=group) as sub:
        delivery = await receive(sub, "the record to dead-letter")
        with capture_logs() as logs:
            await delivery.nack(reason="boom")
        assert any(entry["event"] == "kafka.dlq.publish.failed" for entry in logs), logs
        again = await receive(sub, "the record whose dead-lettering failed")
        assert again.message.id == delivery.message.id
        with pytest.raises(Exception, match="not acked"):
            await again.dead_letter("explicit")
        await sub.commit()
        assert (await committed(tansu, topic, group)).get(0) in (None, 0, -1)
        await again.ack()


async def test_consumer_group_members_share_partitions(make_client: MakeClient) -> None:
    client = make_client()
    topic, group = unique(), unique("g")
    messages = [Message(payload={"n": n}, key=f"k{n}") for n in range(40)]
    await publish(client, topic, messages)
    subs = [await client.subscribe(topic, SubscribeOptions(group=group)) for _ in range(2)]
    seen: dict[str, int] = {}

    async def drain(index: int) -> None:
        while len(seen) < len(messages):
            delivery = await subs[index].receive(timeout=0.2)
            if delivery is not None:
                seen.setdefault(delivery.message.id, index)
                await delivery.ack()

    try:
        await asyncio.wait_for(asyncio.gather(drain(0), drain(1)), WAIT * 2)
    finally:
        for sub in subs:
            await sub.close()
    assert set(seen) == {m.id for m in messages}


async def test_independent_groups_each_receive_everything(make_client: MakeClient) -> None:
    client = make_client()
    topic = unique()
    messages = [Message(payload={"n": n}) for n in range(10)]
    await publish(client, topic, messages)
    for group in (unique("a"), unique("b")):
        async with await client.subscribe(topic, SubscribeOptions(group=group)) as sub:
            got: set[str] = set()
            while len(got) < len(messages):
                delivery = await receive(sub, f"group {group}")
                got.add(delivery.message.id)
                await delivery.ack()
        assert got == {m.id for m in messages}


async def test_group_in_the_location(client: KafkaQueueClient) -> None:
    """``kafka:<topic>?group=<name>``: a listener's own group, written in its event string."""
    topic = unique()
    assert client.parse_location(f"{topic}?group=billing") == f"{topic}?group=billing"
    messages = [Message(payload={"n": n}) for n in range(5)]
    await publish(client, f"{topic}?group=ignored-when-publishing", messages)
    for group in (unique("a"), unique("b")):
        async with await client.subscribe(f"{topic}?group={group}", SubscribeOptions()) as sub:
            assert isinstance(sub, KafkaSubscription)
            assert (sub.topic, sub.group) == (topic, group)
            got: set[str] = set()
            while len(got) < len(messages):
                delivery = await receive(sub, f"group {group}")
                got.add(delivery.message.id)
                await delivery.ack()
        assert got == {m.id for m in messages}


async def test_many_records_through_the_batch_path_with_malformed_ones(
    tansu: Tansu, make_client: MakeClient
) -> None:
    """Thousands of records, published by the plugin (id header) and by a foreign producer
    (no headers, malformed values, a dead-letter reason, a repeated and an empty id header),
    through ``receive_batch`` and ``ack_many``: each becomes the message it carries, and the
    commit reaches the end of the partition."""
    client = make_client()
    topic, group = unique(), unique("g")
    sent = [
        Message(payload={"n": n}, headers={"h": str(n)}, key=None if n % 2 else f"k{n}")
        for n in range(2000)
    ]
    await publish(client, topic, sent)
    foreign: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]] = [
        (b'{"truncated": ', b"k-trunc", []),
        (b"\xff\xfe not utf-8", None, []),
        (None, b"tombstone", []),
        (b"[1, 2] trailing", b"k-trail", [("h", b"x")]),
        (b"{}", b"k-dlq", [(wire.DLQ_REASON, b"it failed"), ("h", b"y")]),
        (b"{}", b"k-ids", [(wire.MESSAGE_ID, b"first"), (wire.MESSAGE_ID, b"second")]),
        (b"{}", b"k-empty", [(wire.MESSAGE_ID, b"")]),
    ]
    producer = await raw_producer(tansu)
    try:
        for value, key, headers in foreign:
            await producer.send_and_wait(topic, value, key=key, headers=headers, partition=0)
    finally:
        await producer.stop()
    total = len(sent) + len(foreign)
    got: list[Delivery] = []
    async with await subscribe(client, topic, group=group, prefetch=500) as sub:
        while len(got) < total:
            batch = await sub.receive_batch(500, timeout=WAIT)
            assert batch, f"only {len(got)} of {total} records arrived"
            await sub.ack_many(batch)
            got += batch
        assert all(d.state is DeliveryState.ACKED for d in got)
        await sub.commit()
    assert len(got) == total
    places = [(raw(d).partition, raw(d).offset) for d in got]
    assert len(set(places)) == total, "each record once"
    by_id = {d.message.id: d for d in got}
    for message in sent:
        delivery = by_id[message.id]
        assert raw(delivery).message_id == message.id
        assert delivery.message.payload == message.payload
        assert dict(delivery.message.headers) == dict(message.headers)
        assert delivery.message.key == message.key
        assert delivery.dead_letter_reason is None
    in_partition_0 = sorted((d for d in got if raw(d).partition == 0), key=lambda d: raw(d).offset)
    trunc, bad, tomb, trail, dlq, ids, empty = in_partition_0[-len(foreign) :]
    assert trunc.message.payload == '{"truncated": '
    assert trunc.message.id == raw(trunc).message_id == f"0-{raw(trunc).offset}"
    assert bad.message.payload == "\ufffd\ufffd not utf-8"
    assert bad.message.key is None
    assert tomb.message.payload is None
    assert tomb.message.key == "tombstone"
    assert trail.message.payload == "[1, 2] trailing"
    assert dict(trail.message.headers) == {"h": "x"}
    assert dlq.dead_letter_reason == "it failed"
    assert dict(dlq.message.headers) == {"h": "y"}, "the plugin's own headers are kept off"
    assert ids.message.id == raw(ids).message_id == "second", "the last id header counts"
    assert empty.message.id == raw(empty).message_id == f"0-{raw(empty).offset}"
    ends = {p: max(o for q, o in places if q == p) + 1 for p, _ in places}
    assert await committed(tansu, topic, group) == ends, "committed to the end of each partition"


async def test_closed_mid_batch_loses_nothing(tansu: Tansu, make_client: MakeClient) -> None:
    """A consumer holding a batch, half of it acked, is closed: the acked half is committed,
    and the group's next consumer receives every record that was not acked (those in hand and
    those still buffered), none of the acked ones again."""
    client = make_client()
    topic, group = unique(), unique("g")
    sent = [Message(payload={"n": n}) for n in range(1500)]
    await publish(client, topic, sent)
    sub = await subscribe(client, topic, group=group, prefetch=500, drain_timeout=0)
    batch = await sub.receive_batch(500, timeout=WAIT)
    assert batch
    acked = batch[: len(batch) // 2]
    await sub.ack_many(acked)
    await sub.close()
    assert all(d.state is DeliveryState.RELEASED for d in batch[len(acked) :])
    acked_ids = {d.message.id for d in acked}
    # Each partition's acked records run from its first offset: all of them are committed.
    positions = (await committed(tansu, topic, group)).values()
    assert sum(p for p in positions if p is not None and p > 0) == len(acked)
    again: list[Delivery] = []
    async with await subscribe(client, topic, group=group, prefetch=500) as second:
        while len(again) < len(sent) - len(acked):
            more = await second.receive_batch(500, timeout=WAIT)
            assert more, f"{len(again)} of {len(sent) - len(acked)} unacked records came back"
            await second.ack_many(more)
            again += more
    ids = [d.message.id for d in again]
    assert len(ids) == len(set(ids)), "each unacked record once"
    assert set(ids) == {m.id for m in sent} - acked_ids
