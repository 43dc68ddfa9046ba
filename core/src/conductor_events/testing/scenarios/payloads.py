"""What a message carries: headers, payloads up to the size limit, batches with a bad message,
and the EVENT task's payload, each compared with what was published."""

from __future__ import annotations

from conductor_events.event_task import EventTask, TaskStatus, execute_event_task
from conductor_events.messages import Message, PublishResult
from conductor_events.testing import requirements as needs
from conductor_events.testing.consume import (
    QUIET_WINDOW,
    consume,
    expect_nothing,
    publish_and_subscribe,
)
from conductor_events.testing.harness import Harness, check_confirmed
from conductor_events.testing.scenario import scenario

HEADERS = {
    "trace-id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "tenant": "Zürich café",
    "greeting": "こんにちは世界",
    "emoji": "🚀 ✨",
    "punctuation": 'a=b; c,d "quoted" \\ /path?x=1&y=2',
    "number-like": "0042",
}
"""Several keys (lower case, letters, digits and ``-``, as every broker allows), values that
are unicode, punctuation, or look like numbers but must stay strings."""


@scenario()
async def header_round_trip(h: Harness) -> None:
    """Every header survives publish and consume exactly: several keys, unicode values; a
    message without headers arrives without any (no backend-internal header leaks)."""
    location = await h.location("headers")
    messages = [
        Message(payload={"headers": "many"}, headers=HEADERS),
        Message(payload={"headers": "one"}, headers={"only": "ünïcödé"}),
        Message(payload={"headers": "none"}),
    ]
    subscriptions = await publish_and_subscribe(h, location, messages)
    await consume(h, subscriptions, messages, what="header round trip")


def sized(size: int, tag: str) -> Message:
    """A message whose encoded payload (a JSON string) is exactly ``size`` bytes."""
    message = Message(payload="x" * (size - 2), headers={"conformance": tag})
    assert len(message.body()) == size
    return message


def check_refused(result: PublishResult, refused: Message, size: int, limit: int) -> None:
    failed = [failure.message_id for failure in result.failed]
    assert failed == [refused.id], (
        f"a {size}-byte payload (limit {limit}) must be reported in PublishResult.failed, "
        f"alone; failed: {failed}, published: {len(result.published)} messages"
    )
    assert refused.id not in result.published, "the refused message is also listed as published"
    assert result.failed[0].reason.strip(), "the failure of the oversized message has no reason"


async def publish_expecting_result(
    h: Harness, location: str, batch: list[Message]
) -> PublishResult:
    try:
        return await h.publish(location, batch)
    except Exception as exc:
        raise AssertionError(
            f"publish raised {type(exc).__name__}: {exc}; a message the broker refuses must be "
            "reported in PublishResult.failed (the EVENT task turns it into a FAILED task "
            "with the reason), raising is for when nothing could be attempted"
        ) from exc


@scenario(needs.bounded_payload)
async def large_payload(h: Harness) -> None:
    """A payload of exactly the size limit is published and arrives intact; one byte more is
    refused per message, with a reason, and nothing of it is written."""
    limit = h.max_payload_size
    assert limit is not None
    location = await h.location("large")
    fits = sized(limit, "at-limit")
    too_large = sized(limit + 1, "past-limit")
    subscription = None if h.capabilities.persistent else await h.subscribe(location)
    check_confirmed(await h.publish(location, [fits]), [fits], f"publish of {limit} bytes")
    check_refused(
        await publish_expecting_result(h, location, [too_large]), too_large, limit + 1, limit
    )
    subscription = subscription or await h.subscribe(location)
    await consume(h, [subscription], [fits], what="large payload at the limit")
    await expect_nothing(
        h,
        subscription,
        QUIET_WINDOW,
        "large payload: the refused message was written anyway",
        tolerate={fits.id},
    )


@scenario(needs.bounded_payload)
async def batch_partial_failure(h: Harness) -> None:
    """One publish of ten messages, the fifth over the size limit: exactly that one is
    reported failed, the other nine are confirmed and delivered."""
    limit = h.max_payload_size
    assert limit is not None
    location = await h.location("batch")
    good = [Message(payload={"batch": index}) for index in range(9)]
    bad = sized(limit + 1, "oversized-in-batch")
    batch = [*good[:4], bad, *good[4:]]
    subscription = None if h.capabilities.persistent else await h.subscribe(location)
    result = await publish_expecting_result(h, location, batch)
    check_refused(result, bad, limit + 1, limit)
    missing = {m.id for m in good} - set(result.published)
    assert not missing, f"batch: {len(missing)} valid messages are not in PublishResult.published"
    subscription = subscription or await h.subscribe(location)
    await consume(h, [subscription], good, what="batch with one refused message")
    await expect_nothing(
        h,
        subscription,
        QUIET_WINDOW,
        "batch: the refused message was written anyway",
        tolerate={m.id for m in good},
    )


@scenario()
async def event_round_trip(h: Harness) -> None:
    """``execute_event_task`` to the sink completes (IN_PROGRESS with asyncComplete) with
    ``event_produced`` naming the sink; a consumer of the same sink receives exactly
    ``task.payload()``, with message id == task id and no headers."""
    location = await h.location("event")
    sink = h.sink(location)
    inputs = {
        "myKey": "myValue",
        "myNumber": 100,
        "nested": {"list": [1, "two", None, True, 2.5], "text": "naïve, ok"},
        "workflowType": "overwritten by the system field",
    }
    tasks = [
        EventTask(
            sink=sink,
            input_parameters=inputs,
            workflow_type="conformance-workflow",
            workflow_version=3,
            correlation_id="correlation-✓",
            task_to_domain={"*": "conformance"},
        ),
        EventTask(sink=sink, input_parameters={"async": True}, async_complete=True),
    ]
    subscription = None if h.capabilities.persistent else await h.subscribe(location)
    produced = str(h.queues.resolve(sink).address)
    for task, status in zip(tasks, (TaskStatus.COMPLETED, TaskStatus.IN_PROGRESS), strict=True):
        result = await execute_event_task(task, h.queues)
        assert result.status is status, (
            f"EVENT task ended {result.status.value}, expected {status.value}: "
            f"{result.reason_for_incompletion}"
        )
        assert result.task_id == task.task_id
        assert result.output_data.get("event_produced") == produced, result.output_data
    expected = [Message(payload=task.payload(), id=task.task_id) for task in tasks]
    subscription = subscription or await h.subscribe(location)
    await consume(h, [subscription], expected, what="EVENT payload round trip")
