"""The ``kafka`` queue client: publish through one shared producer, subscribe with one consumer
per subscription. This module imports aiokafka; only ``connect`` imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]
from aiokafka.errors import KafkaError  # type: ignore[import-untyped]
from aiokafka.helpers import create_ssl_context  # type: ignore[import-untyped]

from conductor_events.backend import QueueClient, SubscribeOptions, Subscription
from conductor_events.errors import MalformedSinkError, QueueError
from conductor_events.messages import Message, PublishFailure, PublishResult
from conductor_events_kafka import options, wire
from conductor_events_kafka.settings import KafkaSettings, check_topic_name

log = structlog.get_logger(__name__)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text and text != name else name


def client_kwargs(settings: KafkaSettings, role: options.Role) -> dict[str, Any]:
    """aiokafka keyword arguments of one client, TLS files turned into an SSL context."""
    arguments = options.translate(settings, role)
    kwargs = dict(arguments.kwargs)
    if arguments.ssl:
        check_hostname = arguments.ssl.pop("check_hostname", True)
        context = create_ssl_context(**arguments.ssl)
        context.check_hostname = bool(check_hostname)
        kwargs["ssl_context"] = context
    elif str(kwargs.get("security_protocol", "")).endswith("SSL"):
        kwargs["ssl_context"] = create_ssl_context()
    strategies = kwargs.pop("partition_assignment_strategy", None)
    if strategies:
        from aiokafka.coordinator.assignors.range import (  # type: ignore[import-untyped]
            RangePartitionAssignor,
        )
        from aiokafka.coordinator.assignors.roundrobin import (  # type: ignore[import-untyped]
            RoundRobinPartitionAssignor,
        )
        from aiokafka.coordinator.assignors.sticky.sticky_assignor import (  # type: ignore[import-untyped]
            StickyPartitionAssignor,
        )

        classes = {
            "range": RangePartitionAssignor,
            "roundrobin": RoundRobinPartitionAssignor,
            "sticky": StickyPartitionAssignor,
        }
        kwargs["partition_assignment_strategy"] = tuple(classes[name] for name in strategies)
    return kwargs


_GROUP = re.compile(r"^[A-Za-z0-9._{}-]{1,255}$")


def split_location(location: str) -> tuple[str, str | None]:
    """``topic?group=name`` into (topic, group); no ``?`` means no group."""
    topic, sep, query = location.partition("?")
    if not sep:
        return topic, None
    name, eq, group = query.partition("=")
    if name != "group" or not eq:
        raise MalformedSinkError(
            f"invalid kafka location {location!r}: expected <topic> or <topic>?group=<group>"
        )
    if not _GROUP.match(group):
        raise MalformedSinkError(
            f"invalid consumer group {group!r}: use up to 255 letters, digits, '.', '_' or '-'"
        )
    return topic, group


class KafkaQueueClient(QueueClient):
    """All ``kafka:`` topics of one cluster. The producer and admin client start on first use."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.max_message_size = settings.max_message_size
        self._producer: Any = None
        self._admin: Any = None
        self._start_lock = asyncio.Lock()
        self._known_topics: set[str] = set()
        self._subscriptions: set[Subscription] = set()

    def parse_location(self, location: str) -> str:
        """``<topic>`` or ``<topic>?group=<consumer group>`` (the group is used when
        subscribing, and ignored when publishing)."""
        topic, group = split_location(location.strip())
        if not topic:
            raise MalformedSinkError("the topic name after 'kafka:' is empty")
        problem = check_topic_name(topic)
        if problem is not None:
            raise MalformedSinkError(problem)
        return topic if group is None else f"{topic}?group={group}"

    # -- connections -----------------------------------------------------------------------

    @property
    def timeout(self) -> float:
        return self.settings.connect_timeout.total_seconds()

    async def producer(self) -> Any:
        """The shared producer, started on first use within ``connect-timeout``."""
        if self._producer is not None:
            return self._producer
        async with self._start_lock:
            if self._producer is None:
                producer = AIOKafkaProducer(**client_kwargs(self.settings, "producer"))
                await self._start(producer, "producer")
                self._producer = producer
        return self._producer

    async def admin(self) -> Any:
        if self._admin is not None:
            return self._admin
        async with self._start_lock:
            if self._admin is None:
                admin = AIOKafkaAdminClient(**client_kwargs(self.settings, "admin"))
                await self._start(admin, "admin client")
                self._admin = admin
        return self._admin

    async def _start(self, client: Any, what: str) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await client.start()
        except (TimeoutError, KafkaError, OSError) as exc:
            with contextlib.suppress(Exception):
                await (client.close() if hasattr(client, "close") else client.stop())
            raise QueueError(
                f"kafka: cannot start the {what} with bootstrap servers "
                f"{self.settings.bootstrap_servers} within {self.timeout:g}s: "
                f"{_describe(exc) if not isinstance(exc, TimeoutError) else 'timed out'}"
            ) from exc

    async def check_topic(self, topic: str) -> None:
        """With ``create-topics=false``, refuse a topic that does not exist (without creating
        it, which a plain metadata request on an auto-creating broker would)."""
        if self.settings.create_topics or topic in self._known_topics:
            return
        admin = await self.admin()
        try:
            async with asyncio.timeout(self.timeout):
                topics = await admin.list_topics()
        except (TimeoutError, KafkaError) as exc:
            raise QueueError(f"kafka: cannot list topics: {_describe(exc)}") from exc
        self._known_topics.update(topics)
        if topic not in self._known_topics:
            raise QueueError(
                f"kafka: topic {topic!r} does not exist and "
                f"{KafkaSettings.section}.create-topics is false"
            )

    # -- publishing ------------------------------------------------------------------------

    async def publish(self, location: str, messages: Sequence[Message]) -> PublishResult:
        location, _ = split_location(location)
        await self.check_topic(location)
        producer = await self.producer()
        limit = self.settings.max_message_size
        result = PublishResult()
        pending: list[tuple[str, asyncio.Future[Any]]] = []
        for message in messages:
            try:
                body = message.body()
            except (TypeError, ValueError) as exc:
                result.failed.append(PublishFailure(message.id, f"payload is not JSON: {exc}"))
                continue
            if len(body) > limit:
                result.failed.append(
                    PublishFailure(
                        message.id,
                        f"message of {len(body)} bytes exceeds the limit of {limit} bytes "
                        f"({KafkaSettings.section}.max-message-size)",
                    )
                )
                continue
            try:
                future = await producer.send(
                    location,
                    value=body,
                    key=wire.record_key(message),
                    headers=wire.record_headers(message),
                    timestamp_ms=int(message.created_at * 1000),
                )
            except (KafkaError, ValueError, TypeError) as exc:
                result.failed.append(PublishFailure(message.id, _describe(exc)))
                continue
            pending.append((message.id, future))
        if pending:
            outcomes = await asyncio.gather(*(f for _, f in pending), return_exceptions=True)
            for (message_id, _), outcome in zip(pending, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    if isinstance(outcome, asyncio.CancelledError):
                        raise outcome
                    result.failed.append(PublishFailure(message_id, _describe(outcome)))
                else:
                    result.published.append(message_id)
        if result.failed:
            log.warning(
                "kafka.publish.failed",
                topic=location,
                failed=len(result.failed),
                reason=result.failed[0].reason,
            )
        return result

    async def send_record(
        self, topic: str, key: bytes | None, value: bytes | None, headers: wire.Headers
    ) -> None:
        """Send one raw record and wait for the broker's confirmation (dead-lettering)."""
        await self.check_topic(topic)
        producer = await self.producer()
        await producer.send_and_wait(topic, value=value, key=key, headers=headers)

    # -- consuming -------------------------------------------------------------------------

    async def subscribe(self, location: str, options: SubscribeOptions) -> Subscription:
        from conductor_events_kafka.consume import KafkaSubscription

        location, location_group = split_location(location)
        await self.check_topic(location)
        group = self.settings.group_for(location, options.group or location_group)
        subscription = KafkaSubscription(self, location, group, options)
        try:
            async with asyncio.timeout(self.timeout):
                await subscription.start()
        except (TimeoutError, KafkaError, OSError) as exc:
            await subscription.abort()
            why = "timed out" if isinstance(exc, TimeoutError) else _describe(exc)
            raise QueueError(
                f"kafka: cannot subscribe to {location!r} as group {group!r} with bootstrap "
                f"servers {self.settings.bootstrap_servers} within {self.timeout:g}s: {why}"
            ) from exc
        if not await subscription.wait_joined(self.timeout):
            log.info(
                "kafka.subscribe.joining",
                topic=location,
                group=group,
                hint="the group is still rebalancing; records arrive once it assigns partitions",
            )
        self._subscriptions.add(subscription)
        return subscription

    def _forget(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    def new_consumer(self, topic: str, group: str) -> Any:
        kwargs = client_kwargs(self.settings, "consumer")
        return AIOKafkaConsumer(group_id=group, **kwargs)

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        admin, self._admin = self._admin, None
        if producer is not None:
            try:
                await producer.stop()
            except Exception as exc:
                log.warning("kafka.producer.close_failed", error=_describe(exc))
        if admin is not None:
            try:
                await admin.close()
            except Exception as exc:
                log.warning("kafka.admin.close_failed", error=_describe(exc))
