"""``decode_payload`` never raises: whatever a foreign producer put on the wire is delivered.

A body the decoder chokes on used to escape from the consumer's receive path, where there is
no delivery yet to nack or dead-letter: ``listen`` exited, and a Kafka or SQS consumer stopped
at that record again after every restart. These tests feed it the bodies that did, and let
hypothesis look for more (any bytes, any text, and valid JSON cut off anywhere).
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conductor_events.messages import JsonValue, decode_payload, encode_payload

PROFILE = settings(database=None, deadline=None)
"""No example database (nothing left behind in the working tree), no deadline (machines are
shared: a slow example is not a failure)."""

json_values: st.SearchStrategy[JsonValue] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
"""Every kind of JSON value (NaN left out: it is not equal to itself, so a round trip of it
cannot be compared with ``==``; the constants are checked on their own below)."""


@st.composite
def truncated_json(draw: st.DrawFn) -> bytes:
    """A valid JSON body cut off at any point: the shape of the bodies that blocked consumers."""
    body = encode_payload(draw(json_values))
    return body[: draw(st.integers(min_value=0, max_value=len(body)))]


json_alphabet_text = st.text(alphabet='[]{}",:-+.0123456789eEtrufalsn \t\n\\/', max_size=40)
"""Text made of JSON's own characters, so hypothesis reaches deep into the decoder."""

any_body = (
    st.binary() | truncated_json() | json_alphabet_text.map(str.encode) | st.text().map(str.encode)
)

any_text = st.text(st.characters(exclude_categories=())) | json_alphabet_text
"""Any text, lone surrogates included (a ``str`` body need not be encodable)."""


def expected_decoding(text: str) -> Any:
    """What ``decode_payload`` must return for ``text``: the JSON value, else the text."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def same(a: Any, b: Any) -> bool:
    """Equality that also holds for NaN, which JSON's ``NaN`` constant decodes to."""
    return type(a) is type(b) and repr(a) == repr(b)


@PROFILE
@given(any_body)
def test_any_bytes_decode_to_their_json_value_or_their_text(body: bytes) -> None:
    text = body.decode("utf-8", "replace")
    assert same(decode_payload(body), expected_decoding(text))


@PROFILE
@given(any_text)
def test_any_text_decodes_to_its_json_value_or_itself(text: str) -> None:
    assert same(decode_payload(text), expected_decoding(text))


@PROFILE
@given(json_values)
def test_encoded_payloads_round_trip(payload: JsonValue) -> None:
    assert decode_payload(encode_payload(payload)) == payload
    assert decode_payload(encode_payload(payload).decode()) == payload


DEEP = 100_000


@pytest.mark.parametrize(
    "body",
    [
        b"[1,2",
        b'"abc',
        b'{"a":',
        b'{"a"',
        b"[" * DEEP,
        b"[" * DEEP + b"]" * DEEP,
        b'{"a":' * DEEP,
        b"1" * 5000,  # longer than Python converts to an int (sys.get_int_max_str_digits)
        b"\xff\xfe not UTF-8 \xc3",
        b"\xc3\x28",
    ],
    ids=[
        "truncated-array",
        "unterminated-string",
        "object-without-value",
        "object-without-colon",
        "deep-open-arrays",
        "deep-closed-arrays",
        "deep-objects",
        "too-long-integer",
        "not-utf8",
        "invalid-utf8-sequence",
    ],
)
def test_bodies_that_blocked_consumers_are_delivered_as_their_text(body: bytes) -> None:
    text = body.decode("utf-8", "replace")
    assert decode_payload(body) == text
    assert decode_payload(text) == text


def test_surrounding_whitespace_is_still_json() -> None:
    assert decode_payload(b' \r\n[1, {"a": null}]\t') == [1, {"a": None}]


def test_json_constants_decode_as_json_loads_does() -> None:
    assert math.isnan(decode_payload(b"NaN"))
    assert decode_payload(b"Infinity") == math.inf
    assert decode_payload(b" -Infinity ") == -math.inf
