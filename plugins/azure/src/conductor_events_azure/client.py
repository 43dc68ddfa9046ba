"""The ``azure`` queue client: connections, reused senders, batched publishing.

This module imports azure-servicebus; only :func:`conductor_events_azure.plugin.connect`
imports it, on the first use of an ``azure:`` queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import structlog
from azure.servicebus import ServiceBusMessage, ServiceBusMessageBatch
from azure.servicebus.aio import ServiceBusClient, ServiceBusSender
from azure.servicebus.exceptions import (
    MessageSizeExceededError,
    ServiceBusAuthenticationError,
    ServiceBusError,
)

from conductor_events.backend import QueueClient, SubscribeOptions, Subscription
from conductor_events.errors import MalformedSinkError, PublishError, QueueError
from conductor_events.messages import Message, PublishFailure, PublishResult
from conductor_events_azure.locations import Location, parse_location
from conductor_events_azure.settings import AzureSettings, ConnectionSettings

log = structlog.get_logger(__name__)

CONTENT_TYPE = "application/json"


def describe_error(exc: BaseException, what: str) -> str:
    """One line saying why a Service Bus call failed, without any secret.

    Authentication failures carry the service's status in the SDK's inner exception: 401 is
    a wrong key or policy, 404 an entity that does not exist.
    """
    inner = getattr(exc, "inner_exception", None)
    status = getattr(inner, "status_code", None)
    description = getattr(inner, "description", None)
    if isinstance(description, bytes):
        description = description.decode("utf-8", "replace")
    if isinstance(exc, ServiceBusAuthenticationError):
        if status == 404:
            return f"{what}: the Service Bus entity does not exist ({description})"
        detail = f" (status {status}: {description})" if status else ""
        return (
            f"{what}: Service Bus refused the credentials{detail}; check the connection's "
            "SharedAccessKeyName and SharedAccessKey, or the token credential's role"
        )
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{what}: {type(exc).__name__}: {text}"


async def open_handler(handler: Any, settings: AzureSettings) -> None:
    """Open a sender's or receiver's link now, retrying transient errors but never a refusal.

    The SDK retries authentication failures like transient errors, so a wrong key would cost
    ``retry.total`` more handshakes, each refused again. The first open therefore runs with the
    SDK's retries off, and this loop retries everything but ``ServiceBusAuthenticationError``
    (a wrong key, or an entity that does not exist). Later operations use the SDK's retries.
    """
    retry = settings.retry
    config = handler._config
    saved = config.retry_total
    config.retry_total = 0
    try:
        attempt = 0
        while True:
            try:
                await handler._open_with_retry()
                return
            except ServiceBusAuthenticationError:
                raise
            except ServiceBusError:
                attempt += 1
                if attempt > saved:
                    raise
                delay = retry.backoff_factor.total_seconds() * 2 ** (attempt - 1)
                if retry.mode == "fixed":
                    delay = retry.backoff_factor.total_seconds()
                await asyncio.sleep(min(delay, retry.backoff_max.total_seconds()))
    finally:
        config.retry_total = saved


class AzureQueueClient(QueueClient):
    """Every ``azure:`` location of one configuration: a Service Bus client per connection,
    one sender per entity (opening one costs a handshake, so they are kept), and the
    subscriptions' receivers."""

    def __init__(self, settings: AzureSettings) -> None:
        self.settings = settings
        self._clients: dict[str | None, ServiceBusClient] = {}
        self._credentials: list[Any] = []
        self._senders: dict[tuple[str | None, str], ServiceBusSender] = {}
        self._sender_locks: dict[tuple[str | None, str], asyncio.Lock] = {}
        self._open_lock = asyncio.Lock()
        self._closed = False

    # -- locations ---------------------------------------------------------------------------

    def parse_location(self, location: str) -> str:
        parsed = parse_location(location)
        if self.settings.connection(parsed.connection) is None:
            if parsed.connection is None:
                raise MalformedSinkError(
                    f"azure:{location} uses the default connection, which is not configured: "
                    "set conductor.event-queues.azure.connection-string (or "
                    "fully-qualified-namespace), or write azure:<connection>:<entity>"
                )
            known = ", ".join(sorted(self.settings.connections)) or "none"
            raise MalformedSinkError(
                f"azure:{location} names connection {parsed.connection!r}, which is not "
                f"configured (conductor.event-queues.azure.connections.<name>.*; configured: "
                f"{known})"
            )
        return parsed.canonical

    # -- connections -------------------------------------------------------------------------

    def service_bus_client(self, connection: str | None) -> ServiceBusClient:
        """The SDK client of a connection, created on first use (no network I/O)."""
        client = self._clients.get(connection)
        if client is None:
            settings = self.settings.connection(connection)
            if settings is None:
                raise QueueError(f"Service Bus connection {connection!r} is not configured")
            client = self._create_client(settings)
            self._clients[connection] = client
        return client

    def _create_client(self, settings: ConnectionSettings) -> ServiceBusClient:
        retry = self.settings.retry
        options: dict[str, Any] = {
            "retry_total": retry.total,
            "retry_backoff_factor": retry.backoff_factor.total_seconds(),
            "retry_backoff_max": retry.backoff_max.total_seconds(),
            "retry_mode": retry.mode,
        }
        if settings.connection_string is not None:
            return ServiceBusClient.from_connection_string(
                settings.connection_string.get_secret_value(), **options
            )
        credential = _token_credential(settings)
        self._credentials.append(credential)
        return ServiceBusClient(settings.fully_qualified_namespace, credential, **options)

    # -- publishing --------------------------------------------------------------------------

    async def _sender(self, location: Location) -> tuple[ServiceBusSender, asyncio.Lock]:
        key = (location.connection, location.entity.lower())
        sender = self._senders.get(key)
        if sender is None:
            async with self._open_lock:
                sender = self._senders.get(key)
                if sender is None:
                    client = self.service_bus_client(location.connection)
                    sender = client.get_queue_sender(location.entity, keep_alive=None)
                    what = f"publish to azure:{location.canonical}"
                    try:
                        await open_handler(sender, self.settings)
                    except ServiceBusError as exc:
                        with contextlib.suppress(Exception):
                            await sender.close()
                        raise PublishError(describe_error(exc, what)) from exc
                    self._senders[key] = sender
                    self._sender_locks[key] = asyncio.Lock()
        return sender, self._sender_locks[key]

    def to_service_bus(
        self, location: Location, message: Message, body: bytes
    ) -> ServiceBusMessage:
        """The SDK message: body, id, headers as application properties, key as session id
        (session-enabled entities) or partition key."""
        session = self.settings.requires_session(location.entity)
        properties: dict[str | bytes, Any] | None = (
            {key: value for key, value in message.headers.items()} if message.headers else None
        )
        return ServiceBusMessage(
            body,
            message_id=message.id,
            application_properties=properties,
            content_type=CONTENT_TYPE,
            session_id=message.key if session else None,
            partition_key=message.key,
        )

    async def publish(self, location: str, messages: Sequence[Message]) -> PublishResult:
        parsed = parse_location(location)
        if not parsed.publishable:
            raise MalformedSinkError(
                f"cannot publish to azure:{location}: publish to the queue or topic "
                f"({parsed.entity}); subscriptions and dead-letter queues are read-only"
            )
        result = PublishResult()
        prepared: list[tuple[Message, ServiceBusMessage, int]] = []
        for message in messages:
            try:
                body = message.body()
            except (TypeError, ValueError) as exc:
                result.failed.append(PublishFailure(message.id, f"payload is not JSON: {exc}"))
                continue
            prepared.append((message, self.to_service_bus(parsed, message, body), len(body)))
        if not prepared:
            return result
        sender, lock = await self._sender(parsed)
        what = f"publish to azure:{location}"
        async with lock:
            try:
                if len(prepared) == 1:
                    await self._send_one(sender, prepared[0], result, what)
                else:
                    await self._send_batches(sender, prepared, result, what)
            except ServiceBusAuthenticationError as exc:
                raise PublishError(describe_error(exc, what)) from exc
        return result

    async def _send_one(
        self,
        sender: ServiceBusSender,
        item: tuple[Message, ServiceBusMessage, int],
        result: PublishResult,
        what: str,
    ) -> None:
        message, sb_message, _ = item
        try:
            await sender.send_messages(sb_message)
        except MessageSizeExceededError as exc:
            result.failed.append(PublishFailure(message.id, _too_large(exc)))
        except ServiceBusAuthenticationError:
            raise
        except ServiceBusError as exc:
            result.failed.append(PublishFailure(message.id, describe_error(exc, what)))
        else:
            result.published.append(message.id)

    async def _send_batches(
        self,
        sender: ServiceBusSender,
        prepared: list[tuple[Message, ServiceBusMessage, int]],
        result: PublishResult,
        what: str,
    ) -> None:
        batch = await sender.create_message_batch()
        members: list[str] = []
        for message, sb_message, size in prepared:
            try:
                batch.add_message(sb_message)
            except MessageSizeExceededError as exc:
                if not members:  # alone it does not fit: too large for the entity
                    result.failed.append(
                        PublishFailure(message.id, _too_large(exc, size, batch.max_size_in_bytes))
                    )
                    continue
                await self._send_batch(sender, batch, members, result, what)
                batch = await sender.create_message_batch()
                members = []
                try:
                    batch.add_message(sb_message)
                except MessageSizeExceededError as again:
                    result.failed.append(
                        PublishFailure(message.id, _too_large(again, size, batch.max_size_in_bytes))
                    )
                    continue
            members.append(message.id)
        if members:
            await self._send_batch(sender, batch, members, result, what)

    async def _send_batch(
        self,
        sender: ServiceBusSender,
        batch: ServiceBusMessageBatch,
        members: list[str],
        result: PublishResult,
        what: str,
    ) -> None:
        try:
            await sender.send_messages(batch)
        except ServiceBusAuthenticationError:
            raise
        except ServiceBusError as exc:
            # A batch is one transfer: the service accepted all of it or none of it.
            reason = describe_error(exc, what)
            result.failed.extend(PublishFailure(message_id, reason) for message_id in members)
        else:
            result.published.extend(members)

    # -- consuming ---------------------------------------------------------------------------

    async def subscribe(self, location: str, options: SubscribeOptions) -> Subscription:
        from conductor_events_azure.consume import AzureSubscription

        parsed = parse_location(location)
        if options.group and parsed.subscription is None and not parsed.dead_letter:
            parsed = Location(parsed.connection, parsed.entity, options.group, False)
        subscription = AzureSubscription(self, parsed, options)
        await subscription.open()
        return subscription

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        senders = list(self._senders.values())
        self._senders.clear()
        for sender in senders:
            try:
                await sender.close()
            except Exception as exc:  # closing is best effort
                log.warning("azure.sender.close.failed", error=str(exc))
        for client in self._clients.values():
            try:
                await client.close()
            except Exception as exc:
                log.warning("azure.client.close.failed", error=str(exc))
        self._clients.clear()
        for credential in self._credentials:
            close = getattr(credential, "close", None)
            if close is not None:
                await close()


def _too_large(exc: BaseException, size: int | None = None, limit: int | None = None) -> str:
    if size is not None and limit is not None:
        return (
            f"message of {size} bytes does not fit in a Service Bus message of at most {limit} "
            "bytes (the entity's limit, headers and properties included); nothing was sent"
        )
    text = getattr(exc, "message", None) or str(exc)
    return f"message too large for the Service Bus entity, nothing was sent: {text}"


def _token_credential(settings: ConnectionSettings) -> Any:
    try:
        from azure.identity import aio as identity  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError as exc:
        raise QueueError(
            "fully-qualified-namespace connections need azure-identity: "
            "pip install 'conductor-events-azure[identity]'"
        ) from exc
    client_id = settings.managed_identity_client_id or None
    if settings.credential == "managed-identity":
        return identity.ManagedIdentityCredential(client_id=client_id)
    if settings.credential == "azure-cli":
        return identity.AzureCliCredential()
    if settings.credential == "environment":
        return identity.EnvironmentCredential()
    if settings.credential == "workload-identity":
        return identity.WorkloadIdentityCredential()
    return identity.DefaultAzureCredential(managed_identity_client_id=client_id)
