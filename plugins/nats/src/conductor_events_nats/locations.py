"""The location grammar of both types: ``subject[:group]``, as in Conductor's NATS modules.

A ``nats`` group is a NATS queue group (its members share the messages; without one, every
subscription receives every message). A ``jsm`` group is a durable consumer name. The group
only matters when subscribing; a publish goes to the subject.
"""

from __future__ import annotations

from typing import NamedTuple

from conductor_events.errors import MalformedSinkError
from conductor_events_nats.settings import check_name, check_subject


class Location(NamedTuple):
    subject: str
    group: str | None

    def __str__(self) -> str:
        return self.subject if self.group is None else f"{self.subject}:{self.group}"


def parse(location: str, queue_type: str, group_word: str) -> Location:
    """Split and check ``subject[:group]``; :class:`MalformedSinkError` says what is wrong."""
    if "?" in location:
        # Conductor's AMQP grammar has parameters; its NATS one has none, and a parameter
        # read as part of the subject would publish to a subject nobody consumes.
        raise MalformedSinkError(
            f"{queue_type} locations take no '?' parameters: expected <subject> or "
            f"<subject>:<{group_word}>"
        )
    subject, colon, group = location.strip().partition(":")
    if not subject:
        raise MalformedSinkError(f"the subject after '{queue_type}:' is empty")
    problem = check_subject(subject)
    if problem is not None:
        raise MalformedSinkError(problem)
    if not colon:
        return Location(subject, None)
    problem = check_name(group, group_word)
    if problem is not None:
        raise MalformedSinkError(f"{problem} (expected <subject> or <subject>:<{group_word}>)")
    return Location(subject, group)
