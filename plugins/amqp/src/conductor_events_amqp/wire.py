"""How a message becomes an AMQP message and back. Imports no aio-pika.

The payload is the body (compact UTF-8 JSON), the message id the ``message_id`` property, the
creation time the ``timestamp`` property, and the headers AMQP headers. Headers whose names
start with ``x-conductor-`` are the plugin's own (the message key, the attempt count kept
across delayed redeliveries, and on dead-lettered messages where they came from and why); they
are kept off ``Message.headers``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RESERVED_PREFIX = "x-conductor-"
KEY = "x-conductor-key"
ATTEMPT = "x-conductor-attempt"
DLQ_REASON = "x-conductor-dlq-reason"
DLQ_QUEUE = "x-conductor-dlq-queue"
DLQ_ATTEMPTS = "x-conductor-dlq-attempts"
DELIVERY_COUNT = "x-delivery-count"
"""Set by RabbitMQ on quorum queues: how many times the message was returned before (kept
off ``Message.headers``; not the attempt count, see :func:`attempt_of`)."""


def text(value: Any) -> str:
    """A header value as text (foreign producers may send bytes, numbers, tables)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def split_headers(raw: Mapping[str, Any] | None) -> tuple[dict[str, str], dict[str, Any]]:
    """(the user's headers as text, the plugin's and the broker's ``x-`` headers as sent)."""
    user: dict[str, str] = {}
    own: dict[str, Any] = {}
    if not raw:
        return user, own
    for name, value in raw.items():
        if name.startswith(RESERVED_PREFIX) or name == DELIVERY_COUNT:
            own[name] = value
        else:
            user[name] = text(value)
    return user, own


def attempt_of(own: Mapping[str, Any]) -> int:
    """Which delivery this is, from 1: the attempt the plugin wrote when it published the
    message again after a nack (every nack republishes, see consume.py).

    Neither RabbitMQ's ``redelivered`` flag nor a quorum queue's ``x-delivery-count`` is used:
    both also count a message returned unhandled (a subscription closing with messages
    prefetched), which is no failed attempt and would dead-letter messages early.
    """
    try:
        return max(1, int(text(own.get(ATTEMPT, 1))))
    except ValueError:
        return 1
