"""Registers the ``azure`` queue type. Importing this imports no Azure SDK: ``connect`` does."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from conductor_events import hookimpl
from conductor_events.backend import QueueClient, QueueType
from conductor_events.config import ConfigProblem, Configuration
from conductor_events_azure.settings import AzureSettings


def connect(settings: AzureSettings) -> QueueClient:
    """The Service Bus client; azure-servicebus is imported here, on first use of ``azure:``."""
    from conductor_events_azure.client import AzureQueueClient

    return AzureQueueClient(settings)


@hookimpl
def register_queue_types(register: Callable[[QueueType[Any]], None]) -> None:
    register(
        QueueType(
            name="azure",
            settings=AzureSettings,
            connect=connect,
            description="Azure Service Bus queues, topics and subscriptions (azure-servicebus)",
            locations="`<entity>` or `<connection>:<entity>`; entity: a queue or topic, "
            "`<topic>/subscriptions/<name>`, or either with `/$deadletterqueue`",
        )
    )


@hookimpl
def validate_config(config: Configuration) -> Iterable[ConfigProblem] | None:
    settings = config.settings("azure")
    if not isinstance(settings, AzureSettings):
        return None
    prefix = AzureSettings.section
    problems = []
    if settings.connection_string is not None and settings.fully_qualified_namespace:
        problems.append(
            config.problem(
                f"{prefix}.fully-qualified-namespace",
                f"is set together with {prefix}.connection-string; set one of them",
            )
        )
    for name, connection in settings.connections.items():
        key = f"{prefix}.connections.{name}"
        if connection.connection_string is not None and connection.fully_qualified_namespace:
            problems.append(
                config.problem(
                    f"{key}.fully-qualified-namespace",
                    f"is set together with {key}.connection-string; set one of them",
                )
            )
        elif not connection.configured:
            problems.append(
                config.problem(
                    f"{key}.connection-string",
                    f"is missing: set it or {key}.fully-qualified-namespace",
                )
            )
    default = settings.default_connection()
    if settings.enabled and not default.configured and not settings.connections:
        problems.append(
            config.problem(
                f"{prefix}.connection-string",
                f"is missing: set it, {prefix}.fully-qualified-namespace, or a named "
                f"connection {prefix}.connections.<name>.connection-string",
            )
        )
    return problems
