"""Registers the ``sqs`` queue type. Importing this imports no boto3: ``connect`` does."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from conductor_events import hookimpl
from conductor_events.backend import QueueClient, QueueType
from conductor_events.config import ConfigProblem, Configuration
from conductor_events_sqs.settings import SqsSettings


def connect(settings: SqsSettings) -> QueueClient:
    """The SQS client; boto3 is imported here, on the first use of an ``sqs:`` queue."""
    from conductor_events_sqs.client import SqsQueueClient

    return SqsQueueClient(settings)


@hookimpl
def register_queue_types(register: Callable[[QueueType[Any]], None]) -> None:
    register(
        QueueType(
            name="sqs",
            settings=SqsSettings,
            connect=connect,
            description="Amazon SQS standard and FIFO queues (boto3)",
            locations="a queue name (`.fifo` for FIFO queues) or a queue URL",
        )
    )


@hookimpl
def validate_config(config: Configuration) -> Iterable[ConfigProblem] | None:
    settings = config.settings("sqs")
    if not isinstance(settings, SqsSettings):
        return None
    problems = []
    prefix = SqsSettings.section
    if settings.access_key_id and settings.secret_access_key is None:
        problems.append(
            config.problem(
                f"{prefix}.access-key-id",
                f"is set without {prefix}.secret-access-key; set both, or neither to use the "
                "AWS credential chain",
            )
        )
    if settings.secret_access_key is not None and not settings.access_key_id:
        problems.append(
            config.problem(
                f"{prefix}.secret-access-key",
                f"is set without {prefix}.access-key-id; set both, or neither to use the "
                "AWS credential chain",
            )
        )
    if settings.session_token is not None and not settings.access_key_id:
        problems.append(
            config.problem(
                f"{prefix}.session-token", f"is only used together with {prefix}.access-key-id"
            )
        )
    return problems
