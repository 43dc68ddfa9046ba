"""The Service Bus test broker itself, checked with the raw azure-servicebus SDK.

Each test states one protocol fact the broker must honour for the plugin's tests to mean
anything (see the module docstring of servicebus_broker.py).
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator, Callable

import pytest
from azure.servicebus import (
    ServiceBusMessage,
    ServiceBusReceiveMode,
    ServiceBusSubQueue,
)
from azure.servicebus.aio import ServiceBusClient
from azure.servicebus.exceptions import (
    MessageLockLostError,
    MessageSizeExceededError,
    ServiceBusAuthenticationError,
)
from servicebus_broker import ServiceBusBroker, split_data_sections


@pytest.fixture
async def sdk(broker: ServiceBusBroker) -> AsyncIterator[ServiceBusClient]:
    async with ServiceBusClient.from_connection_string(
        broker.connection_string(), retry_total=0
    ) as client:
        yield client


async def send(sdk: ServiceBusClient, queue: str, *messages: ServiceBusMessage) -> None:
    async with sdk.get_queue_sender(queue, keep_alive=None) as sender:
        await sender.send_messages(list(messages))


async def test_signed_token_opens_links_and_messages_keep_their_properties(
    sdk: ServiceBusClient, broker: ServiceBusBroker, queue_name: str
) -> None:
    await send(
        sdk,
        queue_name,
        ServiceBusMessage(
            "hello", message_id="m-1", application_properties={"a": "b"}, partition_key="p"
        ),
    )
    (stored,) = broker.peek(queue_name)
    assert stored["message_id"] == "m-1"
    assert stored["properties"] == {"a": "b"}
    async with sdk.get_queue_receiver(queue_name, keep_alive=None) as receiver:
        (message,) = await receiver.receive_messages(1, max_wait_time=5)
        assert str(message) == "hello"
        assert message.sequence_number == stored["sequence_number"]
        assert message.partition_key == "p"
        assert message.locked_until_utc is not None
        assert message.enqueued_time_utc is not None
        await receiver.complete_message(message)
    assert broker.depth(queue_name) == 0


async def test_wrong_key_is_refused_with_401(broker: ServiceBusBroker, queue_name: str) -> None:
    failures = broker.auth_failures
    async with ServiceBusClient.from_connection_string(
        broker.connection_string(key="V3Jvbmc="), retry_total=0
    ) as client:
        with pytest.raises(ServiceBusAuthenticationError) as raised:
            await send(client, queue_name, ServiceBusMessage("x"))
    assert "401" in str(getattr(raised.value, "inner_exception", ""))
    assert broker.auth_failures == failures + 1
    assert broker.depth(queue_name) == 0


async def test_unknown_entity_is_refused_with_404(sdk: ServiceBusClient) -> None:
    with pytest.raises(ServiceBusAuthenticationError) as raised:
        await send(sdk, "does-not-exist", ServiceBusMessage("x"))
    assert "404" in str(getattr(raised.value, "inner_exception", ""))


async def test_a_batch_is_one_transfer_holding_every_message(
    sdk: ServiceBusClient, broker: ServiceBusBroker, queue_name: str
) -> None:
    async with sdk.get_queue_sender(queue_name, keep_alive=None) as sender:
        batch = await sender.create_message_batch()
        assert batch.max_size_in_bytes == broker.max_message_size
        for n in range(5):
            batch.add_message(ServiceBusMessage(f"b{n}", message_id=f"id-{n}"))
        await sender.send_messages(batch)
    assert [m["message_id"] for m in broker.peek(queue_name)] == [f"id-{n}" for n in range(5)]


def test_split_data_sections_reads_only_batches() -> None:
    single = b"\x00\x53\x73\xc0\x02\x01\x40" + b"\x00\x53\x75\xa0\x03abc"
    assert split_data_sections(single) is None  # a data body that is not a message
    inner = b"\x00\x53\x77\xa1\x01x"
    batch = b"\x00\x53\x73\xc0\x02\x01\x40" + b"\x00\x53\x75\xa0" + bytes([len(inner)]) + inner
    assert split_data_sections(batch) == [inner]


async def test_message_over_the_link_limit_is_refused(
    sdk: ServiceBusClient, broker: ServiceBusBroker, queue_name: str
) -> None:
    with pytest.raises(MessageSizeExceededError):
        await send(sdk, queue_name, ServiceBusMessage("x" * (broker.max_message_size + 1)))
    assert broker.depth(queue_name) == 0


async def test_lock_token_is_the_delivery_tag_and_settlements_are_echoed(
    sdk: ServiceBusClient, broker: ServiceBusBroker, queue_name: str
) -> None:
    await send(sdk, queue_name, *(ServiceBusMessage(f"m{n}") for n in range(4)))
    async with sdk.get_queue_receiver(queue_name, keep_alive=None) as receiver:
        messages = await receiver.receive_messages(4, max_wait_time=5)
        assert len(messages) == 4
        assert len({m.lock_token for m in messages}) == 4
        complete, abandon, dead, defer = messages
        await receiver.complete_message(complete)
        await receiver.abandon_message(abandon)
        await receiver.dead_letter_message(dead, reason="bad", error_description="very bad")
        await receiver.defer_message(defer)
        (again,) = await receiver.receive_messages(1, max_wait_time=5)
        assert str(again) == "m1"
        assert again.delivery_count == 1
        assert defer.sequence_number is not None
        (deferred,) = await receiver.receive_deferred_messages([defer.sequence_number])
        assert str(deferred) == "m3"
        await receiver.complete_message(again)
        await receiver.complete_message(deferred)
    async with sdk.get_queue_receiver(
        queue_name, sub_queue=ServiceBusSubQueue.DEAD_LETTER, keep_alive=None
    ) as dead_letters:
        (dl,) = await dead_letters.receive_messages(1, max_wait_time=5)
        assert (str(dl), dl.dead_letter_reason, dl.dead_letter_error_description) == (
            "m2",
            "bad",
            "very bad",
        )
        await dead_letters.complete_message(dl)
    assert broker.depth(queue_name) == 0


async def test_renew_lock_extends_it_and_an_expired_lock_redelivers(
    sdk: ServiceBusClient, broker: ServiceBusBroker, queue_name: str
) -> None:
    await send(sdk, queue_name, ServiceBusMessage("renew"), ServiceBusMessage("expire"))
    async with sdk.get_queue_receiver(queue_name, keep_alive=None) as receiver:
        renewed, expiring = await receiver.receive_messages(2, max_wait_time=5)
        before = renewed.locked_until_utc
        assert before is not None
        await asyncio.sleep(1.5)
        after = await receiver.renew_message_lock(renewed)
        assert after > before
        await asyncio.sleep(1.0)  # past the first 2 s lock; the renewed one still holds
        with pytest.raises(MessageLockLostError):
            await receiver.complete_message(expiring)
        await receiver.complete_message(renewed)
        (again,) = await receiver.receive_messages(1, max_wait_time=5)
        assert str(again) == "expire"
        assert again.delivery_count == 1
        await receiver.complete_message(again)
    assert broker.depth(queue_name) == 0


async def test_max_delivery_count_dead_letters(
    sdk: ServiceBusClient, broker: ServiceBusBroker, make_queue: Callable[..., str]
) -> None:
    name = make_queue(max_delivery_count=2)
    await send(sdk, name, ServiceBusMessage("poison"))
    async with sdk.get_queue_receiver(name, keep_alive=None) as receiver:
        for _ in range(2):
            (message,) = await receiver.receive_messages(1, max_wait_time=5)
            await receiver.abandon_message(message)
        assert await receiver.receive_messages(1, max_wait_time=0.5) == []
    (dead,) = broker.peek(f"{name}/$deadletterqueue")
    assert dead["properties"]["DeadLetterReason"] == "MaxDeliveryCountExceeded"


async def test_peek_schedule_and_cancel(
    sdk: ServiceBusClient, broker: ServiceBusBroker, queue_name: str
) -> None:
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    async with sdk.get_queue_sender(queue_name, keep_alive=None) as sender:
        await sender.send_messages(ServiceBusMessage("now"))
        (number,) = await sender.schedule_messages(ServiceBusMessage("later"), later)
        peeked = None
        async with sdk.get_queue_receiver(queue_name, keep_alive=None) as receiver:
            peeked = await receiver.peek_messages(10)
        assert sorted(str(m) for m in peeked) == ["later", "now"]
        await sender.cancel_scheduled_messages(number)
    async with sdk.get_queue_receiver(
        queue_name, receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE, keep_alive=None
    ) as receiver:
        (message,) = await receiver.receive_messages(5, max_wait_time=1)
        assert str(message) == "now"
    assert broker.depth(queue_name) == 0


async def test_topic_copies_to_every_subscription(
    sdk: ServiceBusClient, broker: ServiceBusBroker
) -> None:
    broker.create_topic("broker-topic")
    broker.create_subscription("broker-topic", "one")
    broker.create_subscription("broker-topic", "two")
    async with sdk.get_topic_sender("broker-topic", keep_alive=None) as sender:
        await sender.send_messages(ServiceBusMessage("fan-out"))
    for name in ("one", "two"):
        async with sdk.get_subscription_receiver("broker-topic", name, keep_alive=None) as receiver:
            (message,) = await receiver.receive_messages(1, max_wait_time=5)
            assert str(message) == "fan-out"
            await receiver.complete_message(message)
