"""The per-message code every backend runs: building messages and their ids, decoding
received bodies."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import pickle
import time
import uuid

import pytest

from conductor_events.messages import Message, decode_payload, new_message_id


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


def test_the_constructor_takes_a_received_message_s_fields_positionally() -> None:
    """Backends build received messages with the one constructor, fields in order."""
    made = Message({"a": [1]}, "m-1", {"trace": "t"}, "key-1", 1700000000.5)
    assert (made.payload, made.id, dict(made.headers), made.key, made.created_at) == (
        {"a": [1]},
        "m-1",
        {"trace": "t"},
        "key-1",
        1700000000.5,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.id = "changed"  # type: ignore[misc]


def test_new_message_ids_are_distinct_version_4_uuids_in_canonical_form() -> None:
    ids = [new_message_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_message_defaults_are_a_new_id_no_headers_and_now() -> None:
    before = time.time()
    first, second = Message({"n": 1}), Message({"n": 1})
    assert first.id != second.id
    assert uuid.UUID(first.id).version == 4
    assert dict(first.headers) == {}
    assert first.key is None
    assert before <= first.created_at <= time.time()
    given = Message("p", "m-1", {"h": "v"}, "k", 12.5)
    assert (given.payload, given.id, dict(given.headers), given.key, given.created_at) == (
        "p",
        "m-1",
        {"h": "v"},
        "k",
        12.5,
    )
    assert Message("p", id=None).id, "id=None means: make one"


def test_message_stays_a_frozen_value() -> None:
    message = Message({"n": [1]}, headers={"h": "v"}, key="k")
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.key = "other"  # type: ignore[misc]
    assert dataclasses.replace(message, key="other").key == "other"
    assert dataclasses.replace(message, key="other").id == message.id
    assert copy.copy(message) == message
    assert pickle.loads(pickle.dumps(message)) == message
