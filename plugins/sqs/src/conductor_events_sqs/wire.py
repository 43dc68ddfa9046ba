"""How a :class:`~conductor_events.messages.Message` travels in SQS, both ways.

On the wire a message is:

* the body: the payload as compact JSON, exactly what a plain SQS consumer reads. Characters
  SQS refuses in a body (U+FFFE, U+FFFF, lone surrogates) are written as JSON ``\\uXXXX``
  escapes, which decode to the same value;
* one String message attribute per header, when the header is a valid SQS attribute (name of
  letters, digits, ``_ - .``; non-empty value; at most 9 of them);
* one attribute ``conductor-events`` holding compact JSON: the message ``id``, the ``key`` on
  standard queues (on FIFO queues the key is the MessageGroupId), headers that could not be
  attributes, and, on a dead-letter queue, why and from where the message was moved;
* on FIFO queues: MessageGroupId = key (or ``fifo-message-group-id``), MessageDeduplicationId =
  the message id (hashed when it is not a valid deduplication id).

Pure Python, no boto3.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conductor_events.messages import JsonValue, Message, decode_payload

MAX_REQUEST_BYTES = 262_144
"""SQS's limit for one message (body plus attributes) and for one batch request."""

ATTRIBUTE_RESERVE = 1024
"""Bytes kept for attributes: the largest accepted payload is the limit less this."""

MAX_PAYLOAD_BYTES = MAX_REQUEST_BYTES - ATTRIBUTE_RESERVE

META = "conductor-events"
MAX_ATTRIBUTES = 10
MAX_REASON = 1000

SYSTEM_ATTRIBUTES = [
    "ApproximateReceiveCount",
    "SentTimestamp",
    "MessageGroupId",
    "MessageDeduplicationId",
    "DeadLetterQueueSourceArn",
]

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_meta_encoder = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))
_INVALID_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ATTRIBUTE_NAME = re.compile(r"^(?!\.)(?!.*\.\.)(?!.*\.$)[A-Za-z0-9_.-]{1,256}$")
_FIFO_ID = re.compile(r"^[!-~]{1,128}$")


class InvalidMessage(ValueError):
    """A message that cannot be sent to SQS as it is; the text says why."""


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def encode_body(payload: JsonValue) -> str:
    """The payload as compact JSON text that SQS accepts."""
    try:
        text = _encoder.encode(payload)
    except (TypeError, ValueError) as exc:
        raise InvalidMessage(f"payload is not JSON: {exc}") from None
    if not text.isascii() and _INVALID_CHARS.search(text):
        text = _INVALID_CHARS.sub(_escape, text)
    return text


def utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _native_attribute(name: str, value: str) -> bool:
    return (
        bool(value)
        and name != META
        and _ATTRIBUTE_NAME.match(name) is not None
        and not name.lower().startswith(("aws.", "amazon."))
        and (value.isascii() or _INVALID_CHARS.search(value) is None)
    )


def deduplication_id(message_id: str) -> str:
    """The message id when SQS accepts it as a deduplication id, else its SHA-256."""
    if _FIFO_ID.match(message_id):
        return message_id
    return hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class Entry:
    """One SendMessageBatch entry (without its ``Id``) and its size as SQS counts it."""

    fields: dict[str, Any]
    size: int


def build_entry(message: Message, *, fifo: bool, default_group: str) -> Entry:
    """The SendMessageBatch entry for a message.

    Raises:
        InvalidMessage: the payload is not JSON, the message is over SQS's size limit, or
            (FIFO) its key is not a valid MessageGroupId. Nothing is sent.
    """
    body = encode_body(message.payload)
    body_size = utf8_size(body)
    if body_size > MAX_PAYLOAD_BYTES:
        raise InvalidMessage(
            f"message of {body_size} bytes is over the SQS limit of {MAX_PAYLOAD_BYTES} bytes "
            f"for a payload ({MAX_REQUEST_BYTES} bytes with its attributes); nothing was sent"
        )
    attributes: dict[str, Any] = {}
    extra: dict[str, str] = {}
    for name, value in message.headers.items():
        if len(attributes) < MAX_ATTRIBUTES - 1 and _native_attribute(name, value):
            attributes[name] = {"DataType": "String", "StringValue": value}
        else:
            extra[name] = value
    meta: dict[str, Any] = {"id": message.id}
    if message.key is not None and not fifo:
        meta["key"] = message.key
    if extra:
        meta["headers"] = extra
    attributes[META] = {"DataType": "String", "StringValue": _meta_encoder.encode(meta)}
    size = body_size + attributes_size(attributes)
    if size > MAX_REQUEST_BYTES:
        raise InvalidMessage(
            f"message of {size} bytes (payload and headers) is over the SQS limit of "
            f"{MAX_REQUEST_BYTES} bytes; nothing was sent"
        )
    fields: dict[str, Any] = {"MessageBody": body, "MessageAttributes": attributes}
    if fifo:
        group = message.key if message.key is not None else default_group
        if not _FIFO_ID.match(group):
            raise InvalidMessage(
                f"key {group!r} cannot be a FIFO MessageGroupId: use 1 to 128 printable ASCII "
                "characters without spaces"
            )
        fields["MessageGroupId"] = group
        fields["MessageDeduplicationId"] = deduplication_id(message.id)
    return Entry(fields, size)


def attributes_size(attributes: Mapping[str, Any]) -> int:
    """Bytes SQS counts for message attributes: name, data type and value of each."""
    total = 0
    for name, attribute in attributes.items():
        total += utf8_size(name) + utf8_size(attribute.get("DataType", ""))
        if "StringValue" in attribute:
            total += utf8_size(attribute["StringValue"])
        elif "BinaryValue" in attribute:
            total += len(attribute["BinaryValue"])
    return total


def read_meta(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The ``conductor-events`` attribute of a received message (empty when absent or bad)."""
    raw = attributes.get(META)
    if not raw:
        return {}
    try:
        meta = json.loads(raw.get("StringValue", ""))
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}


def write_meta(attributes: dict[str, Any], meta: Mapping[str, Any]) -> None:
    attributes[META] = {"DataType": "String", "StringValue": _meta_encoder.encode(dict(meta))}


def received_message(raw: Mapping[str, Any]) -> tuple[Message, dict[str, Any]]:
    """The :class:`Message` of a ReceiveMessage entry, and its ``conductor-events`` metadata.

    A body that is not JSON is delivered as a string; a message from a plain SQS producer
    (no metadata) keeps SQS's MessageId and its attributes as headers.
    """
    attributes: Mapping[str, Any] = raw.get("MessageAttributes") or {}
    system: Mapping[str, str] = raw.get("Attributes") or {}
    meta = read_meta(attributes)
    headers: dict[str, str] = {}
    for name, attribute in attributes.items():
        if name == META:
            continue
        if "StringValue" in attribute:
            headers[name] = attribute["StringValue"]
        elif "BinaryValue" in attribute:
            headers[name] = base64.b64encode(attribute["BinaryValue"]).decode("ascii")
    extra = meta.get("headers")
    if isinstance(extra, dict):
        headers.update({str(k): str(v) for k, v in extra.items()})
    key = system.get("MessageGroupId")
    if key is None and isinstance(meta.get("key"), str):
        key = meta["key"]
    sent = system.get("SentTimestamp")
    message = Message(
        decode_payload(raw.get("Body", "")),
        str(meta.get("id") or raw["MessageId"]),
        headers,
        key,
        int(sent) / 1000 if sent else 0.0,
    )
    return message, meta


def dead_letter_fields(
    raw: Mapping[str, Any],
    *,
    reason: str,
    source: str,
    attempt: int,
    fifo: bool,
    default_group: str,
) -> dict[str, Any]:
    """A SendMessage entry moving a received message to a dead-letter queue: body and
    attributes as received, the reason, source queue and attempts added to the metadata."""
    attributes = {
        name: {
            k: v for k, v in attribute.items() if k in ("DataType", "StringValue", "BinaryValue")
        }
        for name, attribute in (raw.get("MessageAttributes") or {}).items()
    }
    meta = read_meta(attributes)
    meta.setdefault("id", raw["MessageId"])
    if len(reason) > MAX_REASON:
        reason = reason[: MAX_REASON - 3] + "..."
    meta.update(dead_letter_reason=reason, dead_letter_source=source, attempts=attempt)
    if len(attributes) >= MAX_ATTRIBUTES and META not in attributes:
        # a plain producer's message with 10 attributes: fold one into the metadata
        name = next(iter(attributes))
        folded = attributes.pop(name)
        meta.setdefault("headers", {})[name] = folded.get("StringValue", "")
    write_meta(attributes, meta)
    fields: dict[str, Any] = {"MessageBody": raw.get("Body", ""), "MessageAttributes": attributes}
    if fifo:
        system = raw.get("Attributes") or {}
        fields["MessageGroupId"] = system.get("MessageGroupId") or default_group
        fields["MessageDeduplicationId"] = system.get("MessageDeduplicationId") or deduplication_id(
            str(meta["id"])
        )
    return fields
