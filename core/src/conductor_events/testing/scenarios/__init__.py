"""The scenarios, grouped by what they exercise.

``pubsub``: delivery itself (Watermill's core list); ``ordering``: ordered backends;
``lifecycle``: subscriptions and brokers opening, closing and restarting; ``settlement``:
what happens to a message after nack, dead-letter and extend; ``payloads``: what a message
carries (headers, sizes, batches, the EVENT task's payload); ``batches``: consuming a batch
at a time; ``foreign``: bodies written without conductor-events, malformed ones included.
"""

from conductor_events.testing.scenarios import (
    batches,
    foreign,
    lifecycle,
    ordering,
    payloads,
    pubsub,
    settlement,
)

__all__ = ["batches", "foreign", "lifecycle", "ordering", "payloads", "pubsub", "settlement"]
