"""The ``azure:`` location grammar; imports no SDK.

* ``<entity>`` on the default connection, ``<name>:<entity>`` on ``connections.<name>``
  (Orkes' sink form ``azure:<configName>:<queueName>``);
* ``<entity>`` is a queue or a topic (both publish), ``<topic>/subscriptions/<subscription>``
  (consume), or either with ``/$deadletterqueue`` appended (consume the dead-letter sub-queue).

Entity names are at most 260 characters of letters, digits, ``.``, ``-``, ``_`` and ``/``
(Service Bus's rule), so the first ``:`` always ends a connection name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from conductor_events.errors import MalformedSinkError

_ENTITY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,259}$")
_CONNECTION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
DEAD_LETTER_SUFFIX = "$deadletterqueue"


@dataclass(frozen=True, slots=True)
class Location:
    """A parsed ``azure:`` location."""

    connection: str | None
    """The named connection, ``None`` for the default one."""
    entity: str
    """The queue or topic."""
    subscription: str | None = None
    dead_letter: bool = False

    @property
    def path(self) -> str:
        """The entity path as Service Bus writes it (``t/subscriptions/s/$deadletterqueue``)."""
        path = self.entity
        if self.subscription is not None:
            path += f"/subscriptions/{self.subscription}"
        return path + (f"/{DEAD_LETTER_SUFFIX}" if self.dead_letter else "")

    @property
    def canonical(self) -> str:
        return f"{self.connection}:{self.path}" if self.connection else self.path

    @property
    def publishable(self) -> bool:
        return self.subscription is None and not self.dead_letter


def parse_location(location: str) -> Location:
    """Parse a location; raise :class:`MalformedSinkError` saying what is wrong."""
    text = location.strip()
    if not text:
        raise MalformedSinkError("the Service Bus entity after 'azure:' is empty")
    connection: str | None = None
    if ":" in text:
        connection, text = text.split(":", 1)
        if not _CONNECTION.match(connection):
            raise MalformedSinkError(
                f"invalid connection name {connection!r} in azure:{location}: use letters, "
                "digits, '.', '_' and '-' (azure:<connection>:<entity>)"
            )
    parts = text.strip("/").split("/")
    dead_letter = parts[-1].lower() == DEAD_LETTER_SUFFIX
    if dead_letter:
        parts = parts[:-1]
    subscription: str | None = None
    lowered = [part.lower() for part in parts]
    if "subscriptions" in lowered:
        index = lowered.index("subscriptions")
        if index == 0 or index != len(parts) - 2:
            raise MalformedSinkError(
                f"invalid subscription location azure:{location}: expected "
                "<topic>/subscriptions/<subscription>"
            )
        subscription = parts[-1]
        parts = parts[:index]
    entity = "/".join(parts)
    if not _ENTITY.match(entity) or "$" in entity:
        raise MalformedSinkError(
            f"invalid Service Bus entity {entity!r} in azure:{location}: up to 260 letters, "
            "digits and . - _ /, starting with a letter or digit"
        )
    if subscription is not None and not _ENTITY.match(subscription):
        raise MalformedSinkError(f"invalid subscription name {subscription!r} in azure:{location}")
    return Location(connection, entity, subscription, dead_letter)
