"""Sink strings: the first-colon split and each distinct resolution error."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from conductor_events.errors import (
    ConductorInternalSinkError,
    MalformedSinkError,
    QueueTypeDisabledError,
    UnknownQueueTypeError,
)
from conductor_events.event_queues import EventQueues
from conductor_events.plugins import PluginHost
from conductor_events.sinks import SinkAddress, split_sink


@pytest.mark.parametrize(
    ("sink", "expected"),
    [
        ("sqs:send_email_queue", SinkAddress("sqs", "send_email_queue")),
        ("azure:orders:incoming", SinkAddress("azure", "orders:incoming")),
        (
            "sqs:https://sqs.us-east-1.amazonaws.com/1/q",
            SinkAddress("sqs", "https://sqs.us-east-1.amazonaws.com/1/q"),
        ),
        ("local:", SinkAddress("local", "")),
    ],
)
def test_split_at_the_first_colon(sink: str, expected: SinkAddress) -> None:
    assert split_sink(sink) == expected


def test_bare_name_uses_the_default_type_or_fails() -> None:
    assert split_sink("orders", "local") == SinkAddress("local", "orders")
    with pytest.raises(MalformedSinkError, match=r"set conductor\.default-event-queue\.type"):
        split_sink("orders")


@pytest.mark.parametrize("sink", ["conductor", "conductor:wf:ref", "conductorinvalidsink"])
def test_conductor_sinks_belong_to_the_server(sink: str) -> None:
    with pytest.raises(ConductorInternalSinkError, match="Conductor server's internal queue"):
        split_sink(sink)


@pytest.mark.parametrize(("sink", "message"), [("", "sink is empty"), (":q", "empty queue type")])
def test_malformed(sink: str, message: str) -> None:
    with pytest.raises(MalformedSinkError, match=message):
        split_sink(sink)


async def test_resolution_errors_are_distinct(
    plugins: PluginHost, write_properties: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_properties(f"conductor.event-queues.local.path={tmp_path / 'q.db'}\n")
    async with EventQueues.from_files([config], plugins=plugins, environ={}) as queues:
        with pytest.raises(UnknownQueueTypeError, match=r"install conductor-events-sqs"):
            queues.resolve("sqs:orders")
        with pytest.raises(UnknownQueueTypeError, match="unknown queue type 'nats'"):
            queues.resolve("nats:subject")
        with pytest.raises(MalformedSinkError, match="the queue name after 'local:' is empty"):
            queues.resolve("local:")
        with pytest.raises(MalformedSinkError, match="invalid local queue name 'a b'"):
            queues.resolve("local:a b")
    disabled = write_properties("conductor.event-queues.local.enabled=false\n")
    async with EventQueues.from_files([disabled], plugins=plugins, environ={}) as queues:
        with pytest.raises(
            QueueTypeDisabledError, match=r"set conductor.event-queues.local.enabled=true"
        ):
            queues.resolve("local:orders")


async def test_default_type_resolves_bare_names(
    plugins: PluginHost, write_properties: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_properties(
        f"conductor.event-queues.local.path={tmp_path / 'q.db'}\n"
        "conductor.default-event-queue.type=local\n"
    )
    async with EventQueues.from_files([config], plugins=plugins, environ={}) as queues:
        assert str(queues.resolve("orders").address) == "local:orders"
