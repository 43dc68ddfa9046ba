"""Decoding received bodies, and building received messages: the per-message code every
backend's consumer runs."""

from __future__ import annotations

import json
import math

import pytest

from conductor_events.messages import Message, build_received_message, decode_payload


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"order": {"id": 7, "items": [1, 2]}}', {"order": {"id": 7, "items": [1, 2]}}),
        ('["a", null, true]', ["a", None, True]),
        (b'"just a string"', "just a string"),
        (b"42", 42),
        (b"null", None),
        (b' \n{"padded": 1}\t ', {"padded": 1}),  # whitespace around one value is JSON
        ("Grüße, 世界".encode(), "Grüße, 世界"),  # not JSON: the text itself
        (b'{"a": 1} trailing', '{"a": 1} trailing'),  # a value and more: the text
        (b"1 2", "1 2"),
        (b"", ""),
        (b"   ", "   "),
        (b'{"unclosed": ', '{"unclosed": '),
        (b"\xff\xfeok", "\ufffd\ufffdok"),  # not UTF-8: replacement characters, never a crash
    ],
)
def test_decode_payload_gives_json_values_else_the_text(
    body: bytes | str, expected: object
) -> None:
    assert decode_payload(body) == expected


def test_decode_payload_agrees_with_json_loads_on_json_constants() -> None:
    assert math.isnan(decode_payload(b"NaN"))
    assert decode_payload(b"-Infinity") == json.loads("-Infinity")


def test_build_received_message_equals_the_constructor() -> None:
    built = build_received_message({"a": [1]}, "m-1", {"trace": "t"}, "key-1", 1700000000.5)
    made = Message({"a": [1]}, "m-1", {"trace": "t"}, "key-1", 1700000000.5)
    assert built == made
    assert repr(built) == repr(made)
    with pytest.raises(AttributeError):
        built.id = "changed"  # type: ignore[misc]  # still frozen
