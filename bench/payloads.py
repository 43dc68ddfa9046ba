"""The payloads every case publishes: JSON objects of a fixed encoded size (1 KiB by default).

Two shapes, chosen with ``--payload``: ``order`` (the default) looks like an order event, a few
nested objects and a list, so that encoding and decoding do the work a real payload needs;
``flat`` is one id and one long string, the cheapest 1 KiB to encode, which shows what the
queue itself costs with as little JSON work as possible. The size is that of the compact UTF-8
JSON the queues send.
"""

from __future__ import annotations

import json
from typing import Any

PAYLOAD_BYTES = 1024

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode(payload: Any) -> bytes:
    """Compact UTF-8 JSON, as :func:`conductor_events.messages.encode_payload` writes it."""
    return _encoder.encode(payload).encode()


SHAPES = ("order", "flat")


def json_payload(index: int = 0, size: int = PAYLOAD_BYTES, shape: str = "order") -> dict[str, Any]:
    """A JSON object of the given shape whose compact encoding is exactly ``size`` bytes."""
    if shape not in SHAPES:
        raise ValueError(f"unknown payload shape {shape!r}; use one of {', '.join(SHAPES)}")
    payload: dict[str, Any] = {"id": f"event-{index:010d}", "note": ""}
    if shape == "order":
        payload = {
            "orderId": f"order-{index:010d}",
            "customer": {"id": f"customer-{index % 977:06d}", "tier": "gold", "country": "NL"},
            "items": [
                {"sku": f"SKU-{index % 89:05d}-{n}", "quantity": n + 1, "price": 9.95 + n}
                for n in range(5)
            ],
            "total": 74.75,
            "express": index % 2 == 0,
            "note": "",
        }
    room = size - len(encode(payload))
    if room < 0:
        raise ValueError(f"a payload cannot be smaller than {size - room} bytes")
    payload["note"] = "n" * room
    return payload
