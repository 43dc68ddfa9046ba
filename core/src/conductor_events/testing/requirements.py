"""Requirements of scenarios on the backend's capabilities.

Each returns why a scenario does not apply (the text pytest shows for the skip, naming the
flag to set), or ``None`` when it applies.
"""

from __future__ import annotations

from conductor_events.testing.harness import Harness

LEASE_EXPIRY_BUDGET = 20.0
"""Seconds of waiting for leases to expire that the lease-expiry scenario may need (one
visibility timeout per delivery, and one more before the dead-lettering); above it the
scenario is skipped, with the figures, rather than slow every run of the kit."""


def persistent(harness: Harness) -> str | None:
    if harness.capabilities.persistent:
        return None
    return "needs persistent=True (messages kept while no subscription is open, across clients)"


def ordered(harness: Harness) -> str | None:
    if harness.capabilities.ordered:
        return None
    return "needs ordered=True (FIFO per key, next message only after the previous is settled)"


def consumer_groups(harness: Harness) -> str | None:
    if harness.capabilities.consumer_groups:
        return None
    return "needs consumer_groups=True (independent groups that each receive every message)"


def replay(harness: Harness) -> str | None:
    if harness.capabilities.replay:
        return None
    return "needs replay=True (a new subscription without a group reads from the start)"


def restartable(harness: Harness) -> str | None:
    if harness.capabilities.restart_broker is not None:
        return None
    return "needs restart_broker (an async callable that restarts the broker)"


def bounded_payload(harness: Harness) -> str | None:
    if harness.max_payload_size is not None:
        return None
    return (
        "needs max_payload_size (neither the capabilities nor the client's max_message_size "
        "declare a payload limit)"
    )


def dead_letter(harness: Harness) -> str | None:
    if harness.capabilities.dead_letter is not None:
        return None
    return "needs dead_letter=DeadLetterSupport(...) (the backend has no dead-letter destination)"


def attempt_limit(harness: Harness) -> str | None:
    support = harness.capabilities.dead_letter
    if support is None:
        return dead_letter(harness)
    if support.max_deliveries is not None:
        return None
    return "needs dead_letter.max_deliveries (the attempt limit after which a nack dead-letters)"


def visibility_timeout(harness: Harness) -> str | None:
    if harness.capabilities.visibility_timeout is not None:
        return None
    return "needs visibility_timeout (the backend's redelivery timeout, as configured)"


def raw_publisher(harness: Harness) -> str | None:
    if harness.capabilities.raw_publisher is not None:
        return None
    return (
        "needs raw_publisher=RawPublisher(...) (an async callable that writes bodies straight "
        "to the broker with its own client, as a producer without conductor-events does)"
    )


def lease_expiry(harness: Harness) -> str | None:
    """Needs a visibility timeout and an attempt limit on the expiry path, short enough."""
    missing = visibility_timeout(harness)
    if missing is not None:
        return missing
    support = harness.capabilities.dead_letter
    if support is None:
        return dead_letter(harness)
    limit = support.expiry_limit
    if limit is None:
        return (
            "needs dead_letter.max_deliveries or dead_letter.expired_deliveries (deliveries "
            "with an expired lease after which the backend dead-letters the message)"
        )
    visibility = harness.capabilities.visibility_timeout
    assert visibility is not None
    needed = (limit + 1) * visibility
    if needed > LEASE_EXPIRY_BUDGET:
        return (
            f"{limit + 1} visibility timeouts of {visibility:g}s ({needed:g}s) to wait for is "
            f"more than the {LEASE_EXPIRY_BUDGET:g}s this scenario may take; declare a shorter "
            "visibility_timeout or a lower limit in the properties"
        )
    return None
