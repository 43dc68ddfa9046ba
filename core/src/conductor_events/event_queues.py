"""EventQueues: from sink strings to connected queue clients, resolved once and cached.

This is the core's only path to a backend. Resolving ``sqs:orders`` finds the SQS queue type
once, connects its client once, validates the location once; every later publish to that sink
is a dictionary lookup and a direct call into the SQS client, never a broadcast to plugins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import structlog

from conductor_events.backend import QueueClient, SubscribeOptions, Subscription
from conductor_events.config.loader import load_configuration
from conductor_events.config.model import Configuration
from conductor_events.errors import MalformedSinkError
from conductor_events.messages import Message, PublishResult
from conductor_events.plugins import PluginHost
from conductor_events.sinks import SinkAddress, check_queue_type, split_sink

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ResolvedSink:
    """A sink bound to its client: ``str(address)`` is what Conductor calls ``event_produced``."""

    address: SinkAddress
    client: QueueClient

    @property
    def location(self) -> str:
        return self.address.location


class EventQueues:
    """The configured queues of one process. Use as an async context manager, or ``aclose()``."""

    def __init__(self, config: Configuration, plugins: PluginHost) -> None:
        self.config = config
        self.plugins = plugins
        self._clients: dict[str, QueueClient] = {}
        self._sinks: dict[str, ResolvedSink] = {}

    @classmethod
    def from_files(
        cls,
        files: Iterable[str | Path] = (),
        *,
        plugins: PluginHost | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> EventQueues:
        """Load configuration, refuse it when it has errors, log its warnings."""
        plugins = plugins or PluginHost()
        config = load_configuration(files, plugins, environ)
        config.raise_for_errors()
        for warning in config.warnings:
            log.warning("config.warning", problem=str(warning))
        return cls(config, plugins)

    def resolve(self, sink: str) -> ResolvedSink:
        """Resolve a sink or event string, raising a :class:`~conductor_events.errors.SinkError`."""
        resolved = self._sinks.get(sink)
        if resolved is not None:
            return resolved
        address = split_sink(sink, self.config.default_queue.type)
        check_queue_type(address, self.config, self.plugins)
        client = self.client(address.type)
        try:
            location = client.parse_location(address.location)
        except MalformedSinkError as exc:
            raise MalformedSinkError(f"sink '{address}': {exc}") from None
        resolved = ResolvedSink(SinkAddress(address.type, location), client)
        self._sinks[sink] = resolved
        return resolved

    def client(self, type_name: str) -> QueueClient:
        """The client of an enabled queue type, connected on first use."""
        client = self._clients.get(type_name)
        if client is None:
            registered = self.plugins.queue_type(type_name)
            settings = self.config.settings(type_name)
            if registered is None or settings is None:
                raise MalformedSinkError(f"queue type {type_name!r} is not available")
            client = registered.queue_type.connect(settings)
            self._clients[type_name] = client
            log.debug("queues.client.connected", queue_type=type_name)
        return client

    async def publish(self, sink: str, messages: Sequence[Message]) -> PublishResult:
        """Publish to a sink; see :meth:`QueueClient.publish`."""
        resolved = self.resolve(sink)
        return await resolved.client.publish(resolved.location, messages)

    async def subscribe(self, event: str, options: SubscribeOptions | None = None) -> Subscription:
        """Subscribe to an event string (``type:location``)."""
        resolved = self.resolve(event)
        return await resolved.client.subscribe(resolved.location, options or SubscribeOptions())

    async def aclose(self) -> None:
        """Close every client this instance connected."""
        clients, self._clients = self._clients, {}
        self._sinks.clear()
        for type_name, client in clients.items():
            try:
                await client.close()
            except Exception as exc:
                log.warning("queues.client.close_failed", queue_type=type_name, error=str(exc))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
