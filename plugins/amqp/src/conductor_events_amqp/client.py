"""The ``amqp_queue`` and ``amqp_exchange`` client: one robust connection per queue type, a
publishing channel with publisher confirms, a channel per subscription. This module imports
aio-pika; only ``connect`` imports it.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import (
    AbstractExchange,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustQueue,
    ExchangeType,
)
from aio_pika.exceptions import (
    AMQPConnectionError,
    AMQPError,
    AuthenticationError,
    ChannelClosed,
    ChannelInvalidStateError,
    DeliveryError,
    ProbableAuthenticationError,
    PublishError,
)

from conductor_events.backend import QueueClient, SubscribeOptions, Subscription
from conductor_events.errors import QueueError
from conductor_events.messages import Message, PublishFailure, PublishResult
from conductor_events_amqp import locations, wire
from conductor_events_amqp.locations import Kind, Location
from conductor_events_amqp.settings import AmqpSettings

log = structlog.get_logger(__name__)

LOST = (AMQPConnectionError, ChannelInvalidStateError, ConnectionError, asyncio.TimeoutError)
"""Errors of a connection or channel that went away: a publish is retried after them."""


def describe(exc: BaseException) -> str:
    """An SDK error in one line. aio-pika's messages name hosts and frames, never a password
    (the client never puts one in a URL)."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, PublishError):
        return f"returned by the broker: {getattr(exc.frame, 'reply_text', exc.frame.name)}"
    if isinstance(exc, DeliveryError):
        return f"the broker did not confirm it ({exc.frame.name})"
    text = " ".join(str(exc).split())
    name = type(exc).__name__
    return f"{name}: {text}" if text and text != name else name


class AmqpQueueClient(QueueClient):
    """All locations of one queue type (``amqp_queue`` or ``amqp_exchange``) on one broker.

    Nothing connects until the first publish or subscribe. The connection is aio-pika's robust
    connection: after a broker restart it reconnects every ``network-recovery-interval`` and
    restores its channels, declarations and consumers.
    """

    def __init__(self, settings: AmqpSettings, kind: Kind, type_name: str) -> None:
        self.settings = settings
        self.kind: Kind = kind
        self.type_name = type_name
        self.max_message_size = settings.max_message_size
        self.connection_name = f"conductor-events {type_name} {os.getpid()}-{id(self):x}"
        """Shown by ``rabbitmqctl list_connections client_properties``."""
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._start_lock = asyncio.Lock()
        self._locations: dict[str, Location] = {}
        self._exchanges: dict[str, AbstractExchange] = {}
        self._declared: set[str] = set()
        self._declare_locks: dict[str, asyncio.Lock] = {}
        self._delay_queues: set[str] = set()
        self.declared_queues: set[str] = set()
        """Every queue this client declared (main, bound, dead-letter and delay queues)."""
        self.declared_exchanges: set[str] = set()

    # -- locations --------------------------------------------------------------------------

    def parse_location(self, location: str) -> str:
        text = location.strip()
        self.location(text)
        return text

    def location(self, text: str) -> Location:
        found = self._locations.get(text)
        if found is None:
            found = self._locations[text] = locations.parse(text, self.kind, self.settings)
        return found

    def dead_letter_queue(self, queue: str) -> str:
        return f"{queue}{self.settings.dead_letter_suffix}"

    # -- connection -------------------------------------------------------------------------

    @property
    def section(self) -> str:
        """The properties section both AMQP types read, for error messages."""
        return self.settings.section

    async def connection(self) -> AbstractRobustConnection:
        """The robust connection, opened on first use within ``connection-timeout``."""
        if self._connection is not None:
            return self._connection
        async with self._start_lock:
            if self._connection is None:
                self._connection = await self._connect()
        return self._connection

    async def _connect(self) -> AbstractRobustConnection:
        settings = self.settings
        timeout = settings.timeout
        tried: list[str] = []
        for host, port in settings.addresses():
            try:
                async with asyncio.timeout(timeout + 1):
                    connection = await aio_pika.connect_robust(
                        host=host,
                        port=port,
                        login=settings.username,
                        password=settings.password.get_secret_value(),
                        virtualhost=settings.virtual_host,
                        ssl=settings.use_ssl_protocol,
                        timeout=timeout,
                        client_properties={"connection_name": self.connection_name},
                        reconnect_interval=(
                            settings.network_recovery_interval_in_milli_secs / 1000
                        ),
                        heartbeat=settings.request_heartbeat_timeout_in_secs,
                    )
            except (AuthenticationError, ProbableAuthenticationError) as exc:
                raise QueueError(
                    f"{self.type_name}: RabbitMQ at {host}:{port} refused user "
                    f"{settings.username!r} on virtual host {settings.virtual_host!r}: wrong "
                    f"username or password, or no access to the virtual host "
                    f"({self.section}.username, .password, .virtual-host)"
                ) from exc
            except (TimeoutError, OSError, AMQPError) as exc:
                tried.append(f"{host}:{port}: {describe(exc)}")
                continue
            log.debug("amqp.connected", queue_type=self.type_name, host=host, port=port)
            return connection
        raise QueueError(
            f"{self.type_name}: cannot connect to RabbitMQ within {timeout:g}s "
            f"({self.section}.hosts): {'; '.join(tried)}"
        )

    async def channel(self) -> AbstractRobustChannel:
        """The publishing channel, with publisher confirms."""
        if self._channel is not None:
            return self._channel
        connection = await self.connection()
        async with self._start_lock:
            if self._channel is None:
                channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
                assert isinstance(channel, AbstractRobustChannel)
                self._channel = channel
        return self._channel

    async def new_channel(self, prefetch: int) -> AbstractRobustChannel:
        """A channel of its own for one consumer, with its prefetch (QoS)."""
        connection = await self.connection()
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        assert isinstance(channel, AbstractRobustChannel)
        await channel.set_qos(prefetch_count=prefetch)
        return channel

    async def usable(self, channel: AbstractRobustChannel) -> None:
        """Wait until ``channel`` is open. A channel the broker closed (a declaration it
        refused) is reopened by the robust connection in the background; this waits for
        that, within ``connection-timeout``."""
        deadline = time.monotonic() + self.settings.timeout
        while channel.is_closed:
            if time.monotonic() > deadline:
                raise QueueError(
                    f"{self.type_name}: the channel to RabbitMQ did not reopen within "
                    f"{self.settings.timeout:g}s"
                )
            await asyncio.sleep(0.05)

    # -- declarations -----------------------------------------------------------------------

    def queue_arguments(self, location: Location | None = None) -> dict[str, Any]:
        arguments: dict[str, Any] = {"x-queue-type": self.settings.queue_type}
        if location is not None and location.max_priority is not None:
            arguments["x-max-priority"] = location.max_priority
        return arguments

    async def declare_queue(
        self, channel: AbstractRobustChannel, name: str, location: Location | None = None
    ) -> AbstractRobustQueue:
        """Declare a queue (a dead-letter queue when ``location`` is ``None``: always durable,
        never exclusive or auto-deleted)."""
        durable = location.durable if location is not None else True
        exclusive = location.exclusive if location is not None else False
        auto_delete = location.auto_delete if location is not None else False
        await self.usable(channel)
        try:
            async with asyncio.timeout(self.settings.timeout):
                queue = await channel.declare_queue(
                    name,
                    durable=durable,
                    exclusive=exclusive,
                    auto_delete=auto_delete,
                    arguments=self.queue_arguments(location),
                )
        except ChannelClosed as exc:
            raise QueueError(
                f"{self.type_name}: cannot declare queue {name!r} (durable={durable}, "
                f"exclusive={exclusive}, auto-delete={auto_delete}, "
                f"x-queue-type={self.settings.queue_type}): {describe(exc)}"
            ) from exc
        self.declared_queues.add(name)
        assert isinstance(queue, AbstractRobustQueue)
        return queue

    async def declare_exchange(
        self, channel: AbstractRobustChannel, location: Location
    ) -> AbstractExchange:
        await self.usable(channel)
        try:
            async with asyncio.timeout(self.settings.timeout):
                exchange = await channel.declare_exchange(
                    location.name,
                    ExchangeType(location.exchange_type),
                    durable=location.durable,
                    auto_delete=location.auto_delete,
                )
        except ChannelClosed as exc:
            raise QueueError(
                f"{self.type_name}: cannot declare {location.exchange_type} exchange "
                f"{location.name!r} (durable={location.durable}, "
                f"auto-delete={location.auto_delete}): {describe(exc)}"
            ) from exc
        self.declared_exchanges.add(location.name)
        return exchange

    async def declare_consumer_queue(
        self, channel: AbstractRobustChannel, location: Location
    ) -> AbstractRobustQueue:
        """The queue a consumer of ``location`` reads, declared (and bound to its exchange),
        and its dead-letter queue (unless it is a dead-letter queue itself)."""
        queue = await self.declare_queue(channel, location.queue, location)
        if location.kind == "exchange":
            exchange = await self.declare_exchange(channel, location)
            async with asyncio.timeout(self.settings.timeout):
                await queue.bind(exchange, routing_key=location.routing_key)
        if not location.queue.endswith(self.settings.dead_letter_suffix):
            # A dead-letter queue read as a queue gets no dead-letter queue of its own.
            await self.declare_queue(channel, self.dead_letter_queue(location.queue))
        return queue

    async def declare(self, text: str) -> None:
        """Declare what a location needs before messages can wait in it: the queue (and its
        dead-letter queue), or the exchange, its bound queue and the binding. Publishing and
        subscribing do this themselves; this is for set-up ahead of both."""
        location = self.location(text)
        channel = await self.channel()
        await self.declare_consumer_queue(channel, location)

    async def _target(self, text: str) -> tuple[AbstractExchange, str]:
        """Where a publish to ``text`` goes: (exchange, routing key), declared once."""
        location = self.location(text)
        channel = await self.channel()
        key = text
        if key not in self._declared:
            lock = self._declare_locks.setdefault(key, asyncio.Lock())
            async with lock:
                if key not in self._declared:
                    if location.kind == "queue":
                        await self.declare_queue(channel, location.name, location)
                    else:
                        self._exchanges[key] = await self.declare_exchange(channel, location)
                        if location.bind_queue is not None:
                            await self.declare_consumer_queue(channel, location)
                    self._declared.add(key)
        if location.kind == "queue":
            return channel.default_exchange, location.name
        return self._exchanges[key], location.routing_key

    # -- publishing -------------------------------------------------------------------------

    def amqp_message(self, message: Message, body: bytes, location: Location) -> Any:
        headers: dict[str, Any] = dict(message.headers)
        if message.key is not None:
            headers[wire.KEY] = message.key
        return aio_pika.Message(
            body,
            headers=headers or None,
            content_type=self.settings.content_type,
            content_encoding=self.settings.content_encoding,
            delivery_mode=location.delivery_mode,
            message_id=message.id,
            timestamp=message.created_at,
        )

    async def publish(self, location: str, messages: Sequence[Message]) -> PublishResult:
        target = self.location(location)
        exchange, routing_key = await self._target(location)
        limit = self.settings.max_message_size
        result = PublishResult()
        pending: list[tuple[str, Any]] = []
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
                        f"({self.section}.max-message-size)",
                    )
                )
                continue
            pending.append((message.id, self.amqp_message(message, body, target)))
        if pending:
            outcomes = await asyncio.gather(
                *(self.send(exchange, routing_key, amqp) for _, amqp in pending),
                return_exceptions=True,
            )
            for (message_id, _), outcome in zip(pending, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    if not isinstance(outcome, Exception):
                        raise outcome
                    result.failed.append(PublishFailure(message_id, self._why(outcome, target)))
                else:
                    result.published.append(message_id)
        if result.failed:
            log.warning(
                "amqp.publish.failed",
                queue_type=self.type_name,
                location=location,
                failed=len(result.failed),
                reason=result.failed[0].reason,
            )
        return result

    def _why(self, exc: Exception, location: Location) -> str:
        if isinstance(exc, PublishError):
            where = (
                f"queue {location.name!r}"
                if location.kind == "queue"
                else f"exchange {location.name!r} with routing key {location.routing_key!r}"
            )
            return f"unroutable: no queue is bound for it ({where})"
        return describe(exc)

    async def send(self, exchange: AbstractExchange, routing_key: str, message: Any) -> None:
        """Publish one message and wait for the broker's confirmation; retry (per ``limit``,
        ``duration``, ``type``) when the connection or channel was lost meanwhile. A message
        the broker refused, or could not route anywhere (``mandatory``), is not retried."""
        retry = 0
        while True:
            try:
                await exchange.publish(
                    message, routing_key, mandatory=True, timeout=self.settings.timeout
                )
                return
            except DeliveryError:
                raise
            except (*LOST, ChannelClosed) as exc:
                retry += 1
                if retry > self.settings.limit:
                    raise
                wait = self.settings.retry_wait(retry)
                log.info(
                    "amqp.publish.retry",
                    queue_type=self.type_name,
                    retry=retry,
                    wait=wait,
                    error=describe(exc),
                )
                await asyncio.sleep(wait)

    async def send_to_queue(self, queue: str, message: Any) -> None:
        """Publish one message straight to a queue (dead letters, delayed redeliveries)."""
        channel = await self.channel()
        await self.send(channel.default_exchange, queue, message)

    async def delay_queue(self, queue: str, delay: float) -> str:
        """A queue holding messages for ``delay`` seconds (its ``x-message-ttl``), after which
        RabbitMQ dead-letters them back to ``queue``. Declared again before every use, which
        restarts its ``x-expires`` clock, so it is deleted a minute after its last use and never
        while a message waits in it."""
        ttl = max(1, round(delay * 1000))
        name = f"{queue}.delay.{ttl}"
        channel = await self.channel()
        await self.usable(channel)
        async with asyncio.timeout(self.settings.timeout):
            await channel.declare_queue(
                name,
                durable=True,
                arguments={
                    "x-message-ttl": ttl,
                    "x-expires": ttl + 60_000,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": queue,
                },
            )
        self.declared_queues.add(name)
        return name

    # -- consuming --------------------------------------------------------------------------

    async def subscribe(self, location: str, options: SubscribeOptions) -> Subscription:
        from conductor_events_amqp.consume import AmqpSubscription

        target = self.location(location)
        prefetch = max(self.settings.batch_size, options.max_in_flight + options.prefetch)
        started = time.monotonic()
        channel = await self.new_channel(min(prefetch, 65535))
        try:
            queue = await self.declare_consumer_queue(channel, target)
            subscription = AmqpSubscription(self, target, channel, queue, options)
            await subscription.start()
        except BaseException:
            await channel.close()
            raise
        log.debug(
            "amqp.subscribed",
            queue_type=self.type_name,
            queue=target.queue,
            seconds=round(time.monotonic() - started, 3),
        )
        return subscription

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        self._channel = None
        self._exchanges.clear()
        self._declared.clear()
        if connection is not None:
            try:
                await connection.close()
            except Exception as exc:
                log.warning("amqp.close_failed", queue_type=self.type_name, error=describe(exc))
