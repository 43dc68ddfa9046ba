"""The exceptions conductor-events raises, and the exit code each maps to on the command line.

Every error a user can cause carries a one-line message that names what is wrong and where
(property key and file:line, sink, plugin). The CLI prints that line and nothing else unless
``--debug`` is given, so messages here must stand on their own.
"""

from __future__ import annotations


class ConductorEventsError(Exception):
    """Base of every error this package raises on purpose."""

    exit_code = 1


class ConfigError(ConductorEventsError):
    """The configuration is invalid; ``problems`` holds one formatted line per problem."""

    exit_code = 2

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class PluginError(ConductorEventsError):
    """A plugin could not be loaded or registered (strict mode, duplicate queue types)."""

    exit_code = 2


class SinkError(ConductorEventsError):
    """A sink or event string cannot be resolved to an enabled queue.

    Subclasses say why, so callers (the EVENT task, handler validation) can react per cause.
    """

    exit_code = 2


class MalformedSinkError(SinkError):
    """The sink is not ``type:location``, or its location is empty or invalid for its type."""


class UnknownQueueTypeError(SinkError):
    """No installed plugin provides the sink's queue type."""


class QueueTypeDisabledError(SinkError):
    """The queue type is installed but ``conductor.event-queues.<type>.enabled`` is false."""


class ConductorInternalSinkError(SinkError):
    """``conductor`` sinks belong to the Conductor server's internal queue, not to this package."""


class PublishError(ConductorEventsError):
    """The broker did not confirm a publish."""


class MessageTooLargeError(PublishError):
    """A message is larger than its backend accepts; nothing was sent."""


class QueueError(ConductorEventsError):
    """A backend failed in a way that is not about one message (corrupt store, lost connection)."""


class DeliveryStateError(ConductorEventsError):
    """A delivery was settled twice (acked after a nack, and so on)."""
