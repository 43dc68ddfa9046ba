"""The ``jsm`` queue type: NATS JetStream. This module imports nats-py; only ``connect`` does.

A stream stores each subject (found by subject, or created as Conductor does when
``auto-create-streams`` is on); a publish returns once the stream acknowledged each message,
and the message id travels as ``Nats-Msg-Id``, so a retried publish is stored once. Consumers
are durable pull consumers with explicit acks: see :mod:`conductor_events_nats.consume`.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import structlog
from nats.errors import Error as NatsError
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError

from conductor_events.backend import QueueClient, SubscribeOptions, Subscription
from conductor_events.errors import QueueError
from conductor_events.messages import Message, PublishFailure, PublishResult
from conductor_events_nats import wire
from conductor_events_nats.connection import Connection, describe
from conductor_events_nats.locations import parse
from conductor_events_nats.settings import JetStreamSettings, check_name, stream_name_for

log = structlog.get_logger(__name__)

SECTION = JetStreamSettings.section

WINDOW = 4000
"""Publishes awaiting their acknowledgement at most, per connection (nats-py's default)."""

RETURNED_LIMIT = 100_000
"""Hand-backs remembered at most (the oldest are forgotten first)."""


class JetStreamQueueClient(QueueClient):
    """All ``jsm:`` subjects of one NATS server (or cluster), over one connection."""

    def __init__(self, settings: JetStreamSettings) -> None:
        self.settings = settings
        self.max_message_size = settings.max_message_size
        self.connection = Connection(settings, "jsm")
        self._contexts: tuple[Any, Any, Any] | None = None
        self._streams: dict[str, str] = {}
        self._stream_lock = asyncio.Lock()
        self._consumer_lock = asyncio.Lock()
        self.returned: OrderedDict[tuple[str, str, int], int] = OrderedDict()
        """Deliveries handed back unhandled (on close), by (stream, consumer, sequence): the
        server counts them as deliveries, the attempt count does not."""

    def parse_location(self, location: str) -> str:
        """``<subject>`` or ``<subject>:<durable consumer name>``."""
        return str(parse(location, "jsm", "consumer name"))

    @property
    def publish_timeout(self) -> float:
        return self.settings.publish_timeout.total_seconds()

    async def contexts(self) -> tuple[Any, Any]:
        """(JetStream context, JetStream manager) of the current connection."""
        client = await self.connection.client()
        cached = self._contexts
        if cached is None or cached[0] is not client:
            cached = (
                client,
                client.jetstream(timeout=self.publish_timeout, publish_async_max_pending=WINDOW),
                client.jsm(timeout=self.connection.timeout),
            )
            self._contexts = cached
        return cached[1], cached[2]

    def hand_back(self, key: tuple[str, str, int]) -> None:
        returned = self.returned
        returned[key] = returned.get(key, 0) + 1
        returned.move_to_end(key)
        while len(returned) > RETURNED_LIMIT:
            returned.popitem(last=False)

    # -- streams -------------------------------------------------------------------------

    async def stream_for(self, subject: str) -> str:
        """The stream that stores ``subject``: found, or created when allowed."""
        known = self._streams.get(subject)
        if known is not None:
            return known
        async with self._stream_lock:
            known = self._streams.get(subject)
            if known is not None:
                return known
            _, manager = await self.contexts()
            try:
                name = await self._find_stream(manager, subject)
                if name is None:
                    name = await self._create_stream(manager, subject)
            except (NatsError, TimeoutError) as exc:
                raise QueueError(
                    f"jsm: cannot look up the stream of subject {subject!r}: {describe(exc)}"
                ) from exc
            self._streams[subject] = name
            return name

    async def _find_stream(self, manager: Any, subject: str) -> str | None:
        try:
            name: str = await manager.find_stream_name_by_subject(subject)
        except NotFoundError:
            return None
        return name

    async def _create_stream(self, manager: Any, subject: str) -> str:
        if not self.settings.auto_create_streams:
            raise QueueError(
                f"jsm: no stream stores subject {subject!r} and {SECTION}.auto-create-streams "
                f"is false: create a stream for it (nats stream add --subjects {subject}) or "
                "turn auto-create-streams on"
            )
        settings = self.settings
        name = stream_name_for(subject)
        config = StreamConfig(
            name=name,
            subjects=[subject],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType(settings.stream_storage_type),
            max_bytes=settings.stream_max_bytes,
            num_replicas=settings.replicas,
            duplicate_window=settings.duplicate_window.total_seconds(),
        )
        try:
            await manager.add_stream(config)
        except BadRequestError as exc:
            # Created meanwhile by another client for this subject: use it.
            found = await self._find_stream(manager, subject)
            if found is not None:
                return found
            raise QueueError(
                f"jsm: cannot create stream {name!r} for subject {subject!r}: {describe(exc)}"
            ) from exc
        log.info("jsm.stream.created", stream=name, subject=subject)
        return name

    # -- publishing ----------------------------------------------------------------------

    async def publish(self, location: str, messages: Sequence[Message]) -> PublishResult:
        subject = parse(location, "jsm", "consumer name").subject
        await self.stream_for(subject)
        context, _ = await self.contexts()
        limit = self.settings.max_message_size
        result = PublishResult()
        pending: list[tuple[str, asyncio.Future[Any]]] = []
        for message in messages:
            try:
                body = message.body()
            except (TypeError, ValueError) as exc:
                result.failed.append(PublishFailure(message.id, f"payload is not JSON: {exc}"))
                continue
            problem = wire.header_problem(message.headers)
            if problem is None and len(body) > limit:
                problem = (
                    f"message of {len(body)} bytes exceeds the limit of {limit} bytes "
                    f"({SECTION}.max-message-size)"
                )
            if problem is not None:
                result.failed.append(PublishFailure(message.id, problem))
                continue
            # Bound the wait for room only when the window is full: a bounded wait always
            # yields to the loop, and so flushes the socket once per message.
            stall = self.publish_timeout if context.publish_async_pending() >= WINDOW else None
            try:
                future = await context.publish_async(
                    subject,
                    body,
                    wait_stall=stall,
                    headers=wire.encode_headers(message, created_at=False),
                )
            except (NatsError, OSError) as exc:
                result.failed.append(PublishFailure(message.id, describe(exc)))
                continue
            pending.append((message.id, future))
        if pending:
            await self._confirm(pending, subject, result)
        if result.failed:
            log.warning(
                "jsm.publish.failed",
                subject=subject,
                failed=len(result.failed),
                reason=result.failed[0].reason,
            )
        return result

    async def _confirm(
        self, pending: list[tuple[str, asyncio.Future[Any]]], subject: str, result: PublishResult
    ) -> None:
        """Wait for each message's acknowledgement by its stream, up to ``publish-timeout``."""
        _, unconfirmed = await asyncio.wait(
            [future for _, future in pending], timeout=self.publish_timeout
        )
        for future in unconfirmed:
            future.cancel()
        for message_id, future in pending:
            if future in unconfirmed:
                result.failed.append(
                    PublishFailure(
                        message_id,
                        f"no acknowledgement from the stream of {subject!r} within "
                        f"{self.publish_timeout:g}s ({SECTION}.publish-timeout)",
                    )
                )
            elif (error := future.exception()) is not None:
                result.failed.append(PublishFailure(message_id, _publish_error(error, subject)))
            else:
                result.published.append(message_id)

    async def publish_raw(self, subject: str, data: bytes, headers: dict[str, str]) -> None:
        """Publish one message as it is (dead-lettering) and wait for the stream's ack."""
        await self.stream_for(subject)
        context, _ = await self.contexts()
        try:
            await context.publish(subject, data, timeout=self.publish_timeout, headers=headers)
        except (NatsError, TimeoutError) as exc:
            raise QueueError(_publish_error(exc, subject)) from exc

    # -- consuming -----------------------------------------------------------------------

    async def subscribe(self, location: str, options: SubscribeOptions) -> Subscription:
        from conductor_events_nats.consume import JetStreamSubscription

        where = parse(location, "jsm", "consumer name")
        durable = options.group or where.group or self.settings.durable_name
        problem = check_name(durable, "consumer name")
        if problem is not None:
            raise QueueError(f"jsm: {problem}")
        stream = await self.stream_for(where.subject)
        context, manager = await self.contexts()
        try:
            await self._ensure_consumer(manager, stream, durable, where.subject)
            pull = await context.pull_subscribe_bind(durable=durable, stream=stream)
        except (NatsError, TimeoutError) as exc:
            raise QueueError(
                f"jsm: cannot subscribe to {where.subject!r} (stream {stream!r}, consumer "
                f"{durable!r}): {describe(exc)}"
            ) from exc
        return JetStreamSubscription(self, where.subject, stream, durable, pull, options)

    async def _ensure_consumer(self, manager: Any, stream: str, durable: str, subject: str) -> None:
        async with self._consumer_lock:
            try:
                info = await manager.consumer_info(stream, durable)
            except NotFoundError:
                info = None
            if info is None:
                await manager.add_consumer(stream, self._consumer_config(durable, subject))
                log.info("jsm.consumer.created", stream=stream, consumer=durable, subject=subject)
                return
        filtered = info.config.filter_subject
        if filtered and filtered != subject:
            raise QueueError(
                f"jsm: consumer {durable!r} of stream {stream!r} reads subject {filtered!r}, "
                f"not {subject!r}: name another consumer ({subject}:<name>)"
            )

    def _consumer_config(self, durable: str, subject: str) -> ConsumerConfig:
        settings = self.settings
        return ConsumerConfig(
            name=durable,
            durable_name=durable,
            filter_subject=subject,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=settings.ack_wait.total_seconds(),
            # Unlimited at the server: the plugin counts deliveries and dead-letters past
            # max-deliver, where the server would only stop delivering (and keep it for ever).
            max_deliver=-1,
            max_ack_pending=settings.max_ack_pending,
            deliver_policy=DeliverPolicy.ALL
            if settings.deliver_policy == "all"
            else DeliverPolicy.NEW,
        )

    async def close(self) -> None:
        self._contexts = None
        await self.connection.close()


def _publish_error(exc: BaseException, subject: str) -> str:
    from nats.errors import NoRespondersError
    from nats.js.errors import NoStreamResponseError

    if isinstance(exc, NoStreamResponseError | NoRespondersError):
        return f"no stream stores subject {subject!r} (it was deleted, or is not reachable)"
    if isinstance(exc, TimeoutError):
        return f"no acknowledgement from the stream of {subject!r} in time"
    return describe(exc)
