"""Conductor's AMQP location grammar (``AMQPSettings.fromURI``), and one clear line for a
location that does not parse, before any I/O."""

from __future__ import annotations

from pathlib import Path

import pytest
from conductor_events_amqp.locations import parse
from conductor_events_amqp.settings import AmqpSettings

from conductor_events.errors import MalformedSinkError
from conductor_events.event_queues import EventQueues
from conductor_events.plugins import PluginHost

SETTINGS = AmqpSettings()


def test_an_exchange_location_with_every_parameter() -> None:
    location = parse(
        "myEx?bindQueueName=myQ&exchangeType=direct&routingKey=rk&deliveryMode=1"
        "&durable=false&exclusive=true&autoDelete=true&maxPriority=10",
        "exchange",
        SETTINGS,
    )
    assert location.name == "myEx"
    assert location.queue == "myQ"
    assert location.exchange_type == "direct"
    assert location.routing_key == "rk"
    assert location.delivery_mode == 1
    assert (location.durable, location.exclusive, location.auto_delete) == (False, True, True)
    assert location.max_priority == 10


def test_defaults_come_from_the_settings_and_conductor() -> None:
    location = parse("myEx", "exchange", AmqpSettings(exchange_type="fanout", durable=False))
    assert location.queue == "bound_to_myEx"  # Conductor's default bound queue
    assert location.bind_queue is None
    assert location.exchange_type == "fanout"
    assert location.routing_key == ""
    assert location.delivery_mode == 2
    assert location.durable is False
    assert location.max_priority is None


def test_a_queue_location_accepts_and_ignores_exchange_parameters() -> None:
    location = parse("orders?durable=false&exchangeType=topic", "queue", SETTINGS)
    assert location.queue == "orders"
    assert location.durable is False


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("orders?durable=maybe", "durable must be true or false, not 'maybe'"),
        ("orders?deliveryMode=3", "deliveryMode must be 1 (transient) or 2"),
        ("orders?maxPriority=0", "maxPriority must be a number 1-255"),
        ("orders?exchangeType=x-delayed", "exchangeType must be one of direct"),
        ("orders?colour=blue", "unknown parameter 'colour'"),
        ("orders?durable=true&durable=false", "parameter 'durable' is given twice"),
        ("orders?durable", "expected name=value pairs"),
        ("orders?", "nothing after '?'"),
        ("?durable=true", "name before '?' is empty"),
        ("or ders", "must be 1 to 255 letters"),
        ("amq.direct", "starts with 'amq.'"),
        ("orders?bindQueueName=bad%20name", "bindQueueName 'bad name'"),
    ],
)
def test_a_malformed_location_is_one_clear_line(raw: str, words: str) -> None:
    with pytest.raises(MalformedSinkError) as error:
        parse(raw, "exchange", SETTINGS)
    text = str(error.value)
    assert words in text
    assert repr(raw.strip()) in text
    assert "\n" not in text


async def test_a_sink_with_a_malformed_query_names_the_sink(
    plugins: PluginHost, tmp_path: Path
) -> None:
    path = tmp_path / "app.properties"
    path.write_text("conductor.event-queues.amqp.enabled=true\n", encoding="utf-8")
    async with EventQueues.from_files([path], plugins=plugins, environ={}) as queues:
        with pytest.raises(MalformedSinkError) as error:
            queues.resolve("amqp_exchange:events?routingKey=a&durable=yes")
    text = str(error.value)
    assert text.startswith("sink 'amqp_exchange:events?routingKey=a&durable=yes': ")
    assert "durable must be true or false, not 'yes'" in text
