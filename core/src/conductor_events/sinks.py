"""Sink and event strings: ``type:location``, split at the first colon, resolved to a queue type.

Resolution is Conductor's, with distinct errors for each way it can fail, so a user reads what
to do: fix the string, install a package, or set a property.
"""

from __future__ import annotations

from dataclasses import dataclass

from conductor_events.config.model import Configuration
from conductor_events.errors import (
    ConductorInternalSinkError,
    MalformedSinkError,
    QueueTypeDisabledError,
    UnknownQueueTypeError,
)
from conductor_events.install_hints import install_hint, unloaded_type
from conductor_events.plugins import PluginHost


@dataclass(frozen=True, slots=True)
class SinkAddress:
    """A sink split into its queue type and the plugin-owned location."""

    type: str
    location: str

    def __str__(self) -> str:
        return f"{self.type}:{self.location}"


def split_sink(sink: str, default_type: str | None = None) -> SinkAddress:
    """Split ``type:location`` at the first colon; a bare name takes ``default_type``.

    Raises:
        ConductorInternalSinkError: the sink starts with ``conductor``.
        MalformedSinkError: empty sink, empty type, or a bare name with no default type.
    """
    text = sink.strip()
    if not text:
        raise MalformedSinkError("sink is empty; expected type:location, e.g. local:orders")
    if text.startswith("conductor"):
        raise ConductorInternalSinkError(
            f"sink {sink!r} belongs to the Conductor server's internal queue; publish it "
            "from a Conductor workflow, or use a queue type such as local:, sqs:, kafka:"
        )
    type_name, colon, location = text.partition(":")
    if not colon:
        if not default_type:
            raise MalformedSinkError(
                f"sink {sink!r} has no queue type; write type:location (e.g. local:{text}) "
                "or set conductor.default-event-queue.type"
            )
        return SinkAddress(default_type, text)
    if not type_name:
        raise MalformedSinkError(f"sink {sink!r} has an empty queue type before the colon")
    return SinkAddress(type_name, location)


def check_queue_type(address: SinkAddress, config: Configuration, plugins: PluginHost) -> None:
    """Fail unless the sink's queue type is installed and enabled.

    Raises:
        UnknownQueueTypeError: no loaded plugin provides the type (not installed, blocked by
            a plugin switch, or failed to load: the message says which).
        QueueTypeDisabledError: the type is installed but not enabled.
    """
    registered = plugins.queue_type(address.type)
    if registered is None:
        why = unloaded_type(address.type, plugins)
        if why is None:
            why = f"unknown queue type {address.type!r}; {install_hint(address.type)}"
        raise UnknownQueueTypeError(f"sink '{address}': {why}")
    if not config.enabled(address.type):
        if address.type not in config.queues:
            config.raise_for_errors()
        raise QueueTypeDisabledError(
            f"sink '{address}': queue type {address.type!r} is installed but not enabled; "
            f"set {registered.queue_type.section}.enabled=true"
        )
