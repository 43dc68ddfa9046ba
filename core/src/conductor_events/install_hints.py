"""Where the queue types and commands this project knows of come from, for install hints in
errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conductor_events.plugins import PluginHost

KNOWN_PACKAGES = {
    "sqs": "conductor-events-sqs",
    "kafka": "conductor-events-kafka",
    "azure": "conductor-events-azure",
    "amqp_queue": "conductor-events-amqp",
    "amqp_exchange": "conductor-events-amqp",
    "amqp": "conductor-events-amqp",  # the section both AMQP types read
    "nats": "conductor-events-nats",
    "jsm": "conductor-events-nats",
}

KNOWN_COMMANDS = {
    "serve": "conductor-events-handlers",
    "handlers": "conductor-events-handlers",
    "executions": "conductor-events-handlers",
    "worker": "conductor-events-handlers",
}
"""Commands that plugin packages of this project add (``register_commands``)."""

CONDUCTOR_SERVER_TYPES = frozenset({"nats_stream", "default"})
"""Queue types of a Conductor server that no package here provides."""


def install_hint(type_name: str) -> str:
    """What to install to get a queue type, in words that fit after a semicolon."""
    package = KNOWN_PACKAGES.get(type_name)
    if package is not None:
        extra = package.removeprefix("conductor-events-")
        return f"install {package} (pip install 'conductor-events[{extra}]')"
    if type_name in CONDUCTOR_SERVER_TYPES:
        return "it is a Conductor server queue type that no conductor-events plugin provides"
    return "install the plugin package that provides it (see `conductor-events plugins`)"


def unloaded_type(type_name: str, plugins: PluginHost) -> str | None:
    """Why an installed plugin that provides queue type ``type_name`` is not loaded, and what to
    do, in words that stand after a colon; ``None`` when no such plugin is installed (then
    :func:`install_hint` says what to install)."""
    record = plugins.unloaded_provider(type_name)
    if record is None:
        return None
    return (
        f"queue type {type_name!r} is provided by plugin {record.name!r} ({record.label}), "
        f"{record.why_not_loaded}"
    )


def missing_command(name: str, plugins: PluginHost | None) -> str | None:
    """Why command ``name`` is not available and what to do, when a package of this project
    provides it; ``None`` for a name no known package provides (click reports it)."""
    package = KNOWN_COMMANDS.get(name)
    if package is None:
        return None
    extra = package.removeprefix("conductor-events-")
    record = plugins.command_provider(package) if plugins is not None else None
    if record is None:
        return (
            f"command {name!r} is provided by {package}, which is not installed; "
            f"install it: pip install 'conductor-events[{extra}]'"
        )
    return f"command {name!r} is provided by plugin {record.name!r} ({record.label}), " + (
        record.why_not_loaded
    )
