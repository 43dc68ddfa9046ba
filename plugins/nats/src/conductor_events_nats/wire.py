"""How a message becomes a NATS message and back. Imports no nats-py.

The body is the payload as compact UTF-8 JSON. NATS headers carry the message id
(``Nats-Msg-Id``, which JetStream also uses to drop a duplicate publish), the key, the creation
time and the user's headers; on dead-lettered messages, where they came from and why. Header
names starting with ``Nats-`` or ``Conductor-`` are the server's and this plugin's: they are
kept off ``Message.headers``, and a message whose own headers use them is refused.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping

from conductor_events.messages import Message, decode_payload

MESSAGE_ID = "Nats-Msg-Id"
KEY = "Conductor-Key"
CREATED_AT = "Conductor-Created-At"
ATTEMPT = "Conductor-Attempt"
RETURNED_TO = "Conductor-Returned-To"
"""Set on a core NATS message a closing queue-group member publishes again: only members of
that group take it (every other subscriber had its own copy already)."""
DLQ_REASON = "Conductor-Dead-Letter-Reason"
DLQ_SUBJECT = "Conductor-Dead-Letter-Subject"
DLQ_STREAM = "Conductor-Dead-Letter-Stream"
DLQ_SEQUENCE = "Conductor-Dead-Letter-Sequence"
DLQ_ATTEMPTS = "Conductor-Dead-Letter-Attempts"

_RESERVED = ("nats-", "conductor-")
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def is_reserved(name: str) -> bool:
    return name.lower().startswith(_RESERVED)


def header_problem(headers: Mapping[str, str]) -> str | None:
    """Why these headers cannot travel as NATS headers unchanged, or ``None``.

    NATS header names are tokens, and values lose surrounding whitespace and line breaks on
    the way: refusing such a message beats delivering it altered.
    """
    for name, value in headers.items():
        if not _HEADER_NAME.match(name):
            return f"header name {name!r} is not a NATS header token (letters, digits, -_.)"
        if is_reserved(name):
            return f"header name {name!r} is reserved (Nats-* and Conductor-* are the broker's)"
        if value != value.strip() or "\r" in value or "\n" in value:
            return (
                f"header {name!r} has a value with surrounding whitespace or a line break, "
                "which NATS headers do not carry"
            )
    return None


def one_line(text: str) -> str:
    """``text`` as a header value: line breaks as spaces, no surrounding whitespace."""
    return " ".join(text.split())


def encode_headers(message: Message, *, created_at: bool = True) -> dict[str, str]:
    """The NATS headers of a message: the user's, then the plugin's. JetStream stamps every
    stored message with its time, so ``created_at=False`` leaves the creation time out there."""
    headers = dict(message.headers)
    headers[MESSAGE_ID] = message.id
    if created_at:
        headers[CREATED_AT] = repr(message.created_at)
    if message.key is not None:
        headers[KEY] = message.key
    return headers


def split_headers(raw: Mapping[str, str] | None) -> tuple[dict[str, str], dict[str, str]]:
    """(the user's headers, the reserved ones) of a received message."""
    user: dict[str, str] = {}
    own: dict[str, str] = {}
    if raw:
        for name, value in raw.items():
            (own if is_reserved(name) else user)[name] = value
    return user, own


def decode_message(
    data: bytes,
    own: Mapping[str, str],
    user: dict[str, str],
    fallback_id: str,
    fallback_created_at: float | None = None,
) -> Message:
    """The message a received NATS message carries. A body that is not JSON is its text; a
    message from a producer that set no id gets ``fallback_id``, and one without a creation
    time ``fallback_created_at`` (else now)."""
    created_at = _float(own.get(CREATED_AT))
    if created_at is None:
        created_at = time.time() if fallback_created_at is None else fallback_created_at
    return Message(
        decode_payload(data),
        own.get(MESSAGE_ID) or fallback_id,
        user,
        own.get(KEY),
        created_at,
    )


def _float(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None
