"""Conductor's AMQP location grammar: ``name[?param=value&...]``.

``amqp_queue:orders?durable=false`` names a queue; ``amqp_exchange:events?exchangeType=topic&
routingKey=order.created&bindQueueName=order-handler`` names an exchange, the routing key a
publish uses, and the queue a consumer binds to it with that key (Conductor's default:
``bound_to_<exchange>``). Parameters as in Conductor's ``AMQPSettings.fromURI``:
``exchangeType``, ``bindQueueName``, ``routingKey``, ``deliveryMode``, ``durable``,
``exclusive``, ``autoDelete``, ``maxPriority``. Anything else, a repeated parameter or a value
of the wrong kind is a :class:`MalformedSinkError` naming it, before any I/O. As in Conductor,
the exchange parameters are accepted and ignored on an ``amqp_queue`` location.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl

from conductor_events.errors import MalformedSinkError
from conductor_events_amqp.settings import AmqpSettings

Kind = Literal["queue", "exchange"]

_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,255}$")
_EXCHANGE_TYPES = ("direct", "fanout", "topic", "headers")
PARAMETERS = (
    "exchangeType",
    "bindQueueName",
    "routingKey",
    "deliveryMode",
    "durable",
    "exclusive",
    "autoDelete",
    "maxPriority",
)


@dataclass(frozen=True, slots=True)
class Location:
    """A parsed location with the settings' defaults filled in."""

    kind: Kind
    name: str
    """The queue (``amqp_queue``) or the exchange (``amqp_exchange``)."""
    exchange_type: str
    routing_key: str
    bind_queue: str | None
    """The queue bound to the exchange, when the location names one (``bindQueueName``)."""
    delivery_mode: int
    durable: bool
    exclusive: bool
    auto_delete: bool
    max_priority: int | None

    @property
    def queue(self) -> str:
        """The queue a consumer reads: the queue itself, or the exchange's bound queue."""
        if self.kind == "queue":
            return self.name
        return self.bind_queue or f"bound_to_{self.name}"


def _flag(parameter: str, value: str, raw: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    raise MalformedSinkError(
        f"invalid AMQP location {raw!r}: {parameter} must be true or false, not {value!r}"
    )


def _name(what: str, value: str, raw: str) -> str:
    if not _NAME.match(value):
        raise MalformedSinkError(
            f"invalid AMQP location {raw!r}: {what} {value!r} must be 1 to 255 letters, digits, "
            "'.', '_', ':' or '-'"
        )
    if value.startswith("amq."):
        raise MalformedSinkError(
            f"invalid AMQP location {raw!r}: {what} {value!r} starts with 'amq.', which "
            "RabbitMQ reserves"
        )
    return value


def parse(raw: str, kind: Kind, settings: AmqpSettings) -> Location:
    """Parse ``raw`` (the part after ``amqp_queue:`` or ``amqp_exchange:``)."""
    text = raw.strip()
    name, sep, query = text.partition("?")
    if not name:
        raise MalformedSinkError(
            f"invalid AMQP location {raw!r}: the {kind} name before '?' is empty"
        )
    _name(kind, name, raw)
    params: dict[str, str] = {}
    if sep:
        if not query:
            raise MalformedSinkError(f"invalid AMQP location {raw!r}: nothing after '?'")
        try:
            pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            raise MalformedSinkError(
                f"invalid AMQP location {raw!r}: expected name=value pairs joined by '&' after '?'"
            ) from None
        for key, value in pairs:
            if key not in PARAMETERS:
                raise MalformedSinkError(
                    f"invalid AMQP location {raw!r}: unknown parameter {key!r} (known: "
                    f"{', '.join(PARAMETERS)})"
                )
            if key in params:
                raise MalformedSinkError(
                    f"invalid AMQP location {raw!r}: parameter {key!r} is given twice"
                )
            params[key] = value
    exchange_type = params.get("exchangeType", settings.exchange_type)
    if exchange_type not in _EXCHANGE_TYPES:
        raise MalformedSinkError(
            f"invalid AMQP location {raw!r}: exchangeType must be one of "
            f"{', '.join(_EXCHANGE_TYPES)}, not {exchange_type!r}"
        )
    bind_queue = params.get("bindQueueName")
    if bind_queue is not None:
        _name("bindQueueName", bind_queue, raw)
    delivery_mode: int = settings.delivery_mode
    if "deliveryMode" in params:
        if params["deliveryMode"] not in {"1", "2"}:
            raise MalformedSinkError(
                f"invalid AMQP location {raw!r}: deliveryMode must be 1 (transient) or 2 "
                f"(persistent), not {params['deliveryMode']!r}"
            )
        delivery_mode = int(params["deliveryMode"])
    max_priority = None
    if "maxPriority" in params:
        value = params["maxPriority"]
        if not value.isdigit() or not 1 <= int(value) <= 255:
            raise MalformedSinkError(
                f"invalid AMQP location {raw!r}: maxPriority must be a number 1-255, not {value!r}"
            )
        max_priority = int(value)
    return Location(
        kind=kind,
        name=name,
        exchange_type=exchange_type,
        routing_key=params.get("routingKey", ""),
        bind_queue=bind_queue,
        delivery_mode=delivery_mode,
        durable=(
            _flag("durable", params["durable"], raw) if "durable" in params else settings.durable
        ),
        exclusive=(
            _flag("exclusive", params["exclusive"], raw)
            if "exclusive" in params
            else settings.exclusive
        ),
        auto_delete=(
            _flag("autoDelete", params["autoDelete"], raw)
            if "autoDelete" in params
            else settings.auto_delete
        ),
        max_priority=max_priority,
    )
