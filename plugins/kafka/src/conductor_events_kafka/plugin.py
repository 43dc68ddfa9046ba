"""Registers the ``kafka`` queue type. Importing this imports no aiokafka: ``connect`` does."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from conductor_events import hookimpl
from conductor_events.backend import QueueClient, QueueType
from conductor_events.config import ConfigProblem, Configuration
from conductor_events.errors import ConfigError
from conductor_events_kafka import options
from conductor_events_kafka.settings import KafkaSettings


def connect(settings: KafkaSettings) -> QueueClient:
    """The Kafka client; aiokafka is imported here, on the first use of a ``kafka:`` topic.

    Raises :class:`ConfigError` when a raw ``consumer.*``/``producer.*``/``admin.*`` setting is
    unknown or invalid (``config check`` reports the same problems with file and line).
    """
    problems = options.check(settings)
    if problems:
        raise ConfigError(
            [f"{KafkaSettings.section}.{problem.key}: {problem.message}" for problem in problems]
        )
    from conductor_events_kafka.client import KafkaQueueClient

    return KafkaQueueClient(settings)


@hookimpl
def register_queue_types(register: Callable[[QueueType[Any]], None]) -> None:
    register(
        QueueType(
            name="kafka",
            settings=KafkaSettings,
            connect=connect,
            description="Apache Kafka topics with consumer groups (aiokafka)",
            locations="a topic, or `<topic>?group=<consumer group>` to consume as that group",
        )
    )


@hookimpl
def validate_config(config: Configuration) -> Iterable[ConfigProblem] | None:
    settings = config.settings("kafka")
    if not isinstance(settings, KafkaSettings):
        return None
    return [
        config.problem(f"{KafkaSettings.section}.{problem.key}", problem.message)
        for problem in options.check(settings)
    ]
