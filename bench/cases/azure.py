"""Azure Service Bus through the ``azure`` plugin, next to the raw ``azure-servicebus`` SDK doing
the same work, both against the Service Bus test broker of the plugin's tests
(``plugins/azure/tests/servicebus_broker.py``, on ``python-qpid-proton``), started on 127.0.0.1
inside each measurement and stopped there.

The broker is Python too and part of both figures, so the ratio is what matters: the target is
at least 90% of the raw SDK's throughput for batched publishing and for peek-lock receive +
complete. Every published message was confirmed by the broker when ``publish`` returns; every
consumed message has its JSON payload decoded and is completed, one settlement at a time,
before the next is counted. Opening
senders and receivers (a handshake each) is untimed on both sides.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.framework import THROUGHPUT, Baseline, BenchError, Case, MinRatio, RunContext, Sample
from bench.payloads import json_payload
from conductor_events.backend import SubscribeOptions
from conductor_events.config import load_configuration
from conductor_events.event_queues import EventQueues
from conductor_events.messages import Message, encode_payload
from conductor_events.plugins import PluginHost

ORDER = 40
BROKER_FILE = Path(__file__).resolve().parents[2] / "plugins/azure/tests/servicebus_broker.py"
QUEUE = "bench"
BATCH = 100
PREFETCH = 100


def _missing() -> str | None:
    for module, package in (
        ("azure.servicebus", "azure-servicebus"),
        ("proton", "python-qpid-proton"),
        ("conductor_events_azure", "conductor-events-azure"),
    ):
        if importlib.util.find_spec(module) is None:
            return f"{package} is not installed (pip install -e 'plugins/azure[test]')"
    if not BROKER_FILE.exists():
        return f"the Service Bus test broker is missing ({BROKER_FILE.name})"
    return None


def _broker_module() -> ModuleType:
    name = "servicebus_broker"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, BROKER_FILE)
        if spec is None or spec.loader is None:
            raise BenchError(f"cannot load {BROKER_FILE}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


class _Broker:
    """A fresh broker with one queue, for one measurement."""

    def __enter__(self) -> Any:
        self.broker = _broker_module().ServiceBusBroker()
        self.broker.start()
        self.broker.create_queue(QUEUE, lock_duration=60.0)
        return self.broker

    def __exit__(self, *exc: object) -> None:
        self.broker.stop()


def _plugin_queues(broker: Any) -> EventQueues:
    import conductor_events_azure.plugin

    plugins = PluginHost(entry_points=[])
    plugins.add_plugin(conductor_events_azure.plugin, "azure")
    environ = {
        "CONDUCTOR_EVENTQUEUES_AZURE_ENABLED": "true",
        "CONDUCTOR_EVENTQUEUES_AZURE_CONNECTIONSTRING": broker.connection_string(),
        "CONDUCTOR_EVENTQUEUES_AZURE_RECEIVE_PREFETCHCOUNT": str(PREFETCH),
    }
    config = load_configuration([], plugins, environ)
    config.raise_for_errors()
    return EventQueues(config, plugins)


# -- publishing ------------------------------------------------------------------------------


def _plugin_publish(batch: int) -> Any:
    def measure(ctx: RunContext) -> Sample:
        with _Broker() as broker:
            return asyncio.run(_plugin_publish_async(ctx, broker, batch))

    return measure


async def _plugin_publish_async(ctx: RunContext, broker: Any, batch: int) -> Sample:
    payload = json_payload(shape=ctx.options.payload)
    sink = f"azure:{QUEUE}"
    async with _plugin_queues(broker) as queues:
        await queues.publish(sink, [Message(payload)])  # opens the sender, untimed
        loop = asyncio.get_running_loop()
        done, start = 0, loop.time()
        while done < ctx.count and not ctx.expired():
            result = await queues.publish(sink, [Message(payload) for _ in range(batch)])
            if not result.ok:
                raise BenchError(f"publish refused: {result.failure_summary()}")
            done += batch
        seconds = loop.time() - start
    return Sample(done, seconds)


def _raw_publish(batch: int) -> Any:
    def measure(ctx: RunContext) -> Sample:
        with _Broker() as broker:
            return asyncio.run(_raw_publish_async(ctx, broker, batch))

    return measure


async def _raw_publish_async(ctx: RunContext, broker: Any, batch: int) -> Sample:
    from azure.servicebus import ServiceBusMessage
    from azure.servicebus.aio import ServiceBusClient

    body = encode_payload(json_payload(shape=ctx.options.payload))
    async with (
        ServiceBusClient.from_connection_string(broker.connection_string()) as client,
        client.get_queue_sender(QUEUE, keep_alive=None) as sender,
    ):
        await sender.send_messages(ServiceBusMessage(body))  # untimed, as for the plugin
        loop = asyncio.get_running_loop()
        done, start = 0, loop.time()
        while done < ctx.count and not ctx.expired():
            if batch == 1:
                await sender.send_messages(ServiceBusMessage(body))
            else:
                message_batch = await sender.create_message_batch()
                for _ in range(batch):
                    message_batch.add_message(ServiceBusMessage(body))
                await sender.send_messages(message_batch)
            done += batch
        seconds = loop.time() - start
    return Sample(done, seconds)


# -- consuming -------------------------------------------------------------------------------


async def _prefill(broker: Any, count: int, shape: str) -> None:
    from azure.servicebus import ServiceBusMessage
    from azure.servicebus.aio import ServiceBusClient

    body = encode_payload(json_payload(shape=shape))
    async with (
        ServiceBusClient.from_connection_string(broker.connection_string()) as client,
        client.get_queue_sender(QUEUE, keep_alive=None) as sender,
    ):
        for start in range(0, count, BATCH):
            message_batch = await sender.create_message_batch()
            for _ in range(min(BATCH, count - start)):
                message_batch.add_message(ServiceBusMessage(body))
            await sender.send_messages(message_batch)


def _plugin_consume(ctx: RunContext) -> Sample:
    with _Broker() as broker:
        return asyncio.run(_plugin_consume_async(ctx, broker))


async def _plugin_consume_async(ctx: RunContext, broker: Any) -> Sample:
    await _prefill(broker, ctx.count, ctx.options.payload)
    options = SubscribeOptions(max_in_flight=PREFETCH, prefetch=PREFETCH)
    async with _plugin_queues(broker) as queues:
        subscription = await queues.subscribe(f"azure:{QUEUE}", options)  # untimed open
        loop = asyncio.get_running_loop()
        done, start = 0, loop.time()
        async with subscription:
            while done < ctx.count and not ctx.expired():
                delivery = await subscription.receive(timeout=10.0)
                if delivery is None:
                    raise BenchError(f"queue ran dry after {done} of {ctx.count} messages")
                await delivery.ack()
                done += 1
            seconds = loop.time() - start
    return Sample(done, seconds)


def _raw_consume(ctx: RunContext) -> Sample:
    with _Broker() as broker:
        return asyncio.run(_raw_consume_async(ctx, broker))


async def _raw_consume_async(ctx: RunContext, broker: Any) -> Sample:
    from azure.servicebus.aio import ServiceBusClient

    await _prefill(broker, ctx.count, ctx.options.payload)
    async with (
        ServiceBusClient.from_connection_string(broker.connection_string()) as client,
        client.get_queue_receiver(QUEUE, prefetch_count=PREFETCH, keep_alive=None) as receiver,
    ):
        loop = asyncio.get_running_loop()
        done, start = 0, loop.time()
        while done < ctx.count and not ctx.expired():
            messages = await receiver.receive_messages(
                max_message_count=PREFETCH, max_wait_time=10.0
            )
            if not messages:
                raise BenchError(f"queue ran dry after {done} of {ctx.count} messages")
            for message in messages:
                json.loads(b"".join(message.body))  # a consumer reads the JSON payload
                await receiver.complete_message(message)
                done += 1
        seconds = loop.time() - start
    return Sample(done, seconds)


CASES = [
    Case(
        backend="azure",
        name=f"publish-batch-{BATCH}",
        description=f"publish() of {BATCH} messages per call (ServiceBusMessageBatch), 1 KiB JSON",
        metric=THROUGHPUT,
        measure=_plugin_publish(BATCH),
        count=20_000,
        quick_count=3_000,
        baseline=Baseline(
            f"azure-servicebus: create_message_batch, add {BATCH}, send_messages",
            _raw_publish(BATCH),
        ),
        target=MinRatio(0.9),
        warmup=500,
        requires=_missing,
    ),
    Case(
        backend="azure",
        name="publish-single",
        description="publish() of one message per call, confirmed when it returns",
        metric=THROUGHPUT,
        measure=_plugin_publish(1),
        count=3_000,
        quick_count=500,
        baseline=Baseline("azure-servicebus: send_messages(one message)", _raw_publish(1)),
        target=MinRatio(0.8),
        warmup=100,
        requires=_missing,
    ),
    Case(
        backend="azure",
        name="consume-complete",
        description=f"PEEK_LOCK receive() and ack() (complete) each message (prefetch {PREFETCH})",
        metric=THROUGHPUT,
        measure=_plugin_consume,
        count=10_000,
        quick_count=2_000,
        baseline=Baseline(
            f"azure-servicebus: receive_messages({PREFETCH}), complete_message each",
            _raw_consume,
        ),
        target=MinRatio(0.9),
        warmup=200,
        requires=_missing,
    ),
]
