"""The message model shared by every backend: what is published, and how payloads are encoded.

A payload is any JSON value. Backends move bytes, so every backend encodes with
:func:`encode_payload` and decodes with :func:`decode_payload`; a body that is not JSON is
delivered as a string rather than dropped, because a consumer must never lose a message it
cannot parse.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JsonValue = Any
"""Any value :func:`json.dumps` accepts: dict, list, str, int, float, bool or None."""

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_decoder = json.JSONDecoder()


def new_message_id() -> str:
    """A fresh, globally unique message id."""
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class Message:
    """One message to publish, or one that was received.

    ``key`` orders, groups or partitions messages; each backend maps it (SQS FIFO group id,
    Kafka record key, Service Bus session or partition key). ``created_at`` is seconds since
    the epoch, set by the publisher.
    """

    payload: JsonValue
    id: str = field(default_factory=new_message_id)
    headers: Mapping[str, str] = field(default_factory=dict)
    key: str | None = None
    created_at: float = field(default_factory=time.time)

    def body(self) -> bytes:
        """The payload as it goes on the wire: compact UTF-8 JSON."""
        return encode_payload(self.payload)


def encode_payload(payload: JsonValue) -> bytes:
    """Encode a JSON value as compact UTF-8 JSON bytes.

    Raises:
        TypeError: the payload holds a value JSON cannot represent.
    """
    return _encoder.encode(payload).encode()


def decode_payload(body: bytes | str) -> JsonValue:
    """Decode a received body: JSON when it parses, else the text itself.

    Bytes that are not UTF-8 are decoded with replacement characters; a received message is
    always delivered, never dropped for its encoding.
    """
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    try:
        return _decoder.decode(text)
    except ValueError:
        return text


@dataclass(frozen=True, slots=True)
class PublishFailure:
    """A message that a publish did not deliver, and why."""

    message_id: str
    reason: str


@dataclass(slots=True)
class PublishResult:
    """The outcome of a (batch) publish: which messages the broker confirmed, which failed."""

    published: list[str] = field(default_factory=list)
    failed: list[PublishFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every message was confirmed."""
        return not self.failed

    def failure_summary(self) -> str:
        """One line naming each failed message and its reason."""
        return "; ".join(f"{f.message_id}: {f.reason}" for f in self.failed)
