"""The message model shared by every backend: what is published, and how payloads are encoded.

A payload is any JSON value. Backends move bytes, so every backend encodes with
:func:`encode_payload` and decodes with :func:`decode_payload`; a body that is not JSON is
delivered as a string rather than dropped, because a consumer must never lose a message it
cannot parse.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

JsonValue = Any
"""Any value :func:`json.dumps` accepts: dict, list, str, int, float, bool or None."""

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_decoder = json.JSONDecoder()
_raw_decode = _decoder.raw_decode
_UNDECODABLE = (ValueError, RecursionError)
"""What decoding a body can raise: ``JSONDecodeError`` and the integer-length limit are
``ValueError``; nesting deeper than the decoder recurses is ``RecursionError``."""
_urandom = os.urandom
_now = time.time


def new_message_id() -> str:
    """A fresh, globally unique message id: a random (version 4) UUID in its usual text form.

    The same bits as ``str(uuid.uuid4())``, formatted straight from the random bytes instead
    of through a ``UUID`` object: about half the cost, and every published message makes one.
    """
    raw = bytearray(_urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True, slots=True, init=False)
class Message:
    """One message to publish, or one that was received.

    ``Message(payload, id=None, headers=None, key=None, created_at=None)`` is its one
    constructor, for publishers and for backends building received messages alike: an id,
    headers or creation time left out (or ``None``) is a new id, no headers and now.

    ``key`` orders, groups or partitions messages; each backend maps it (SQS FIFO group id,
    Kafka record key, Service Bus session or partition key). ``created_at`` is seconds since
    the epoch, set by the publisher.
    """

    payload: JsonValue
    id: str
    headers: Mapping[str, str]
    key: str | None
    created_at: float

    def __init__(
        self,
        payload: JsonValue,
        id: str | None = None,
        headers: Mapping[str, str] | None = None,
        key: str | None = None,
        created_at: float | None = None,
    ) -> None:
        # Written out rather than generated: a frozen dataclass's own __init__ looks up
        # object.__setattr__ for each field, and every publish builds a Message.
        _set_payload(self, payload)
        _set_id(self, new_message_id() if id is None else id)
        _set_headers(self, {} if headers is None else headers)
        _set_key(self, key)
        _set_created_at(self, _now() if created_at is None else created_at)

    def body(self) -> bytes:
        """The payload as it goes on the wire: compact UTF-8 JSON."""
        return encode_payload(self.payload)


_SlotSetter = Callable[[Message, Any], None]
_slots = vars(Message)
_set_payload: _SlotSetter = _slots["payload"].__set__
_set_id: _SlotSetter = _slots["id"].__set__
_set_headers: _SlotSetter = _slots["headers"].__set__
_set_key: _SlotSetter = _slots["key"].__set__
_set_created_at: _SlotSetter = _slots["created_at"].__set__


def encode_payload(payload: JsonValue) -> bytes:
    """Encode a JSON value as compact UTF-8 JSON bytes.

    Raises:
        TypeError: the payload holds a value JSON cannot represent.
    """
    return _encoder.encode(payload).encode()


def decode_payload(body: bytes | str) -> JsonValue:
    """Decode a received body: JSON when it parses, else the text itself.

    Never raises, whatever the body: a consumer that failed here would have no delivery to
    settle or dead-letter, so a foreign or truncated body would stop it (or, redelivered,
    stop it again on every restart). Bytes that are not UTF-8 are decoded with replacement
    characters; a body that is not one JSON value (truncated, nested deeper than the decoder
    recurses, an integer longer than Python converts, plain text) is delivered as its text.

    A consumer calls this once per message, so the common case (a body that is one JSON value,
    nothing around it) takes one ``raw_decode``, skipping ``decode``'s two whitespace matches;
    anything else takes the full path.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        value, end = _raw_decode(text)
        if end == len(text):
            return value
    except _UNDECODABLE:  # leading whitespace, or not JSON at all
        pass
    try:
        return _decoder.decode(text)  # surrounding whitespace is fine, anything else is not
    except _UNDECODABLE:
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
