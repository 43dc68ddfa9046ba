"""How a message becomes a Kafka record and back. Imports no aiokafka.

A record carries the message's payload as its value (compact UTF-8 JSON), its key (the
message key, else the message id, so retries of one message land on one partition) and its
headers. Headers whose names start with ``conductor.`` are the plugin's own: the message id,
and on dead-lettered records where they came from and why. They are kept off
``Message.headers`` and available raw on the delivery.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from conductor_events.messages import JsonValue, Message

RESERVED_PREFIX = "conductor."
MESSAGE_ID = "conductor.message-id"
DLQ_REASON = "conductor.dlq.reason"
DLQ_TOPIC = "conductor.dlq.topic"
DLQ_PARTITION = "conductor.dlq.partition"
DLQ_OFFSET = "conductor.dlq.offset"
DLQ_ATTEMPTS = "conductor.dlq.attempts"

Headers = list[tuple[str, bytes]]


def record_key(message: Message) -> bytes:
    """The record key: the message key, else its id."""
    return (message.key if message.key is not None else message.id).encode()


def record_headers(message: Message) -> Headers:
    headers = [(name, value.encode()) for name, value in message.headers.items()]
    headers.append((MESSAGE_ID, message.id.encode()))
    return headers


def text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", errors="replace")


def split_headers(raw: Sequence[tuple[str, bytes]]) -> tuple[dict[str, str], dict[str, str]]:
    """(the user's headers, the plugin's ``conductor.*`` headers), values as text."""
    user: dict[str, str] = {}
    own: dict[str, str] = {}
    for name, value in raw:
        target = own if name.startswith(RESERVED_PREFIX) else user
        target[name] = text(value) or ""
    return user, own


def conductor_shape(key: str | None, headers: dict[str, str], payload: JsonValue) -> Any:
    """Conductor's Kafka message shape, as its handlers see it."""
    return {"key": key, "headers": headers, "payload": payload}
