"""Message counts of the short and full modes.

Full mode uses the counts of Watermill's universal Pub/Sub tests, which are what shake out
races (thousands of messages, dozens of concurrent publishers and subscribers). Short mode
keeps every scenario's shape with counts a slow broker or emulator gets through in seconds;
a plugin picks it with ``short = True`` on its test class, and ``--conformance-full`` on the
pytest command line overrides that choice.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Counts:
    """How many messages, publishers and subscribers each scenario uses."""

    name: str
    publish_subscribe: int
    concurrent_messages: int
    concurrent_publishers: int
    concurrent_subscribers: int
    topics: int
    messages_per_topic: int
    resend_on_error: int
    continue_after_close: int
    concurrent_close_subscribers: int
    concurrent_close_messages: int
    error_subscribers: int
    nacks_per_subscriber: int
    errors_messages: int
    in_order: int
    in_order_keys: int
    publisher_close: int
    publisher_close_publishers: int
    subscribe_ctx: int
    replay: int
    reconnect: int
    consumer_groups: int
    batch_receive: int


FULL = Counts(
    name="full",
    publish_subscribe=100,
    concurrent_messages=5000,
    concurrent_publishers=50,
    concurrent_subscribers=50,
    topics=20,
    messages_per_topic=100,
    resend_on_error=100,
    continue_after_close=5000,
    concurrent_close_subscribers=10,
    concurrent_close_messages=50,
    error_subscribers=3,
    nacks_per_subscriber=100,
    errors_messages=50,
    in_order=1000,
    in_order_keys=16,
    publisher_close=10000,
    publisher_close_publishers=20,
    subscribe_ctx=20,
    replay=100,
    reconnect=10000,
    consumer_groups=50,
    batch_receive=200,
)

SHORT = Counts(
    name="short",
    publish_subscribe=100,
    concurrent_messages=100,
    concurrent_publishers=50,
    concurrent_subscribers=10,
    topics=10,
    messages_per_topic=50,
    resend_on_error=100,
    continue_after_close=50,
    concurrent_close_subscribers=10,
    concurrent_close_messages=50,
    error_subscribers=3,
    nacks_per_subscriber=5,
    errors_messages=50,
    in_order=100,
    in_order_keys=16,
    publisher_close=100,
    publisher_close_publishers=20,
    subscribe_ctx=20,
    replay=20,
    reconnect=200,
    consumer_groups=50,
    batch_receive=25,
)
