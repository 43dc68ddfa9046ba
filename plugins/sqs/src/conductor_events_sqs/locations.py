"""The ``sqs:`` location grammar: a queue name or a queue URL; ``.fifo`` names FIFO queues.

``sqs:orders``, ``sqs:orders.fifo``,
``sqs:https://sqs.eu-west-1.amazonaws.com/123456789012/orders``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from conductor_events.errors import MalformedSinkError

MAX_NAME = 80
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True, slots=True)
class QueueRef:
    """A parsed location: the queue's name, and its URL when the location was one."""

    name: str
    url: str | None = None

    @property
    def fifo(self) -> bool:
        return self.name.endswith(".fifo")

    @property
    def base_name(self) -> str:
        """The name without ``.fifo``."""
        return self.name.removesuffix(".fifo")


def check_queue_name(name: str) -> str | None:
    """Why ``name`` is not a valid SQS queue name, or ``None`` when it is."""
    base = name.removesuffix(".fifo")
    if not base or len(name) > MAX_NAME or not _NAME.match(base):
        return (
            f"invalid SQS queue name {name!r}: use 1 to {MAX_NAME} letters, digits, '-' and "
            "'_' (a FIFO queue's name ends in '.fifo'), or give the queue's URL"
        )
    return None


def parse_location(location: str) -> QueueRef:
    """Parse a location, raising :class:`MalformedSinkError` with what is wrong."""
    text = location.strip()
    if not text:
        raise MalformedSinkError("the queue name after 'sqs:' is empty")
    if "://" in text:
        return _parse_url(text)
    problem = check_queue_name(text)
    if problem:
        raise MalformedSinkError(problem)
    return QueueRef(text)


def _parse_url(text: str) -> QueueRef:
    parts = urlsplit(text)
    segments = [s for s in parts.path.split("/") if s]
    if parts.scheme not in {"http", "https"} or not parts.hostname or len(segments) != 2:
        raise MalformedSinkError(
            f"invalid SQS queue URL {text!r}: expected "
            "https://sqs.<region>.amazonaws.com/<account-id>/<queue-name>"
        )
    if parts.query or parts.fragment:
        raise MalformedSinkError(f"invalid SQS queue URL {text!r}: remove the '?' or '#' part")
    problem = check_queue_name(segments[1])
    if problem:
        raise MalformedSinkError(f"{problem} (in URL {text!r})")
    return QueueRef(segments[1], text)


def dead_letter_location(template: str, source: QueueRef) -> str:
    """The dead-letter location for ``source`` from the ``dead-letter-queue`` setting.

    ``{queue}`` becomes the source's name without ``.fifo``; a FIFO source gets a FIFO
    dead-letter queue (SQS requires the same type), so ``.fifo`` is appended when missing.
    """
    location = template.replace("{queue}", source.base_name)
    if source.fifo and "://" not in location and not location.endswith(".fifo"):
        location += ".fifo"
    return location
