"""SIGTERM with messages in flight: they are finished (or returned to the queue when the
shutdown timeout runs out), everything is settled, and the exit status is 0. A second signal
exits at once, and nothing that was acked is lost."""

from __future__ import annotations

import signal
from pathlib import Path

from conductor_events.backend import SubscribeOptions
from conductor_events_handlers.testing.conductor_double import ConductorDouble

from .conftest import (
    EVENT,
    Publisher,
    Service,
    ServiceFactory,
    complete_handler,
    completed,
    eventually,
    order_messages,
    start_workflows,
    write_handlers,
    write_properties,
)

MESSAGES = 40
TASK_UPDATES = r"^/api/tasks$"


def _start(
    tmp_path: Path,
    double: ConductorDouble,
    serve: ServiceFactory,
    shutdown_timeout: str,
    visibility_timeout: str = "120s",
) -> Service:
    # A long visibility timeout: a message found in the queue at the end was returned on
    # shutdown, not brought back by the broker's timeout.
    properties = write_properties(
        tmp_path / "app.properties",
        double,
        **{"conductor.event-queues.local.visibility-timeout": visibility_timeout},
    )
    handlers = write_handlers(tmp_path / "handlers.json", complete_handler())
    return serve(
        "-c",
        str(properties),
        "--handlers",
        str(handlers),
        "--shutdown-timeout",
        shutdown_timeout,
    )


async def _visible_now(publisher: Publisher) -> list[str]:
    """Receive everything that can be received at once, and leave it in the queue."""
    options = SubscribeOptions(max_in_flight=MESSAGES, prefetch=MESSAGES, drain_timeout=0)
    found = []
    async with await publisher.queues.subscribe(EVENT, options) as subscription:
        while (delivery := await subscription.receive(timeout=0.5)) is not None:
            found.append(delivery.message.id)
    return found


async def test_sigterm_finishes_messages_in_flight_and_exits_0(
    tmp_path: Path, double: ConductorDouble, publisher: Publisher, serve: ServiceFactory
) -> None:
    workflows = start_workflows(double, MESSAGES)
    double.inject(None, times=MESSAGES, method="POST", path=TASK_UPDATES, delay=0.3)
    service = _start(tmp_path, double, serve, "20")
    await service.wait_logged("serve.started")
    await publisher.publish(EVENT, order_messages(workflows))
    await eventually(lambda: len(double.requests_to("POST", TASK_UPDATES)) >= 8, 20, "in flight")
    reached_conductor = len(double.requests_to("POST", TASK_UPDATES))
    service.signal(signal.SIGTERM)

    assert await service.wait_exit() == 0, service.text()
    assert service.logged("serve.stopped")
    assert not service.logged("serve.listener.shutdown_timeout")
    done = completed(double, workflows)
    assert done >= reached_conductor  # every action that had started was finished
    assert done < MESSAGES  # it stopped receiving
    acked = len(service.logged("handlers.message.acked"))
    assert acked == done
    remaining = await _visible_now(publisher)
    assert len(remaining) == MESSAGES - acked == await publisher.depth(EVENT)
    for message_id in remaining:  # the rest are untouched, ready for the next consumer
        n = int(message_id.split("-")[1])
        assert double.task(workflows[n], "task_a")["status"] == "IN_PROGRESS"


async def test_shutdown_timeout_returns_unfinished_messages_and_exits_0(
    tmp_path: Path, double: ConductorDouble, publisher: Publisher, serve: ServiceFactory
) -> None:
    workflows = start_workflows(double, MESSAGES)
    double.inject(None, times=MESSAGES, method="POST", path=TASK_UPDATES, delay=3)
    service = _start(tmp_path, double, serve, "0.5")
    await service.wait_logged("serve.started")
    await publisher.publish(EVENT, order_messages(workflows))
    await eventually(lambda: len(double.requests_to("POST", TASK_UPDATES)) >= 8, 20, "in flight")
    service.signal(signal.SIGTERM)

    assert await service.wait_exit() == 0, service.text()
    timed_out = service.logged("serve.listener.shutdown_timeout")
    assert timed_out
    assert timed_out[0]["returned"] == 8
    assert not service.logged("handlers.message.acked")
    # Nothing is stuck invisible: every message can be received again at once.
    assert len(await _visible_now(publisher)) == MESSAGES


async def test_second_signal_exits_at_once_and_loses_nothing_acked(
    tmp_path: Path, double: ConductorDouble, publisher: Publisher, serve: ServiceFactory
) -> None:
    workflows = start_workflows(double, MESSAGES)
    # A short visibility timeout: the messages in hand when the process exits come back soon.
    service = _start(tmp_path, double, serve, "60", visibility_timeout="2s")
    await service.wait_logged("serve.started")
    await publisher.publish(EVENT, order_messages(workflows[:10], prefix="early"))
    await eventually(lambda: completed(double, workflows[:10]) == 10, 20, "early messages")
    await eventually(lambda: len(service.logged("handlers.message.acked")) == 10, 20, "acks")

    slow = double.inject(None, times=10_000, method="POST", path=TASK_UPDATES, delay=4)
    late = order_messages(workflows[10:], prefix="late")
    await publisher.publish(EVENT, late)
    await eventually(lambda: len(double.requests_to("POST", TASK_UPDATES)) >= 18, 20, "in flight")
    service.signal(signal.SIGTERM)
    await service.wait_logged("serve.stopping")
    service.signal(signal.SIGTERM)
    assert await service.wait_exit(timeout=10) == 128 + signal.SIGTERM
    assert service.logged("serve.shutdown.forced")

    # What was acked stays acked; the rest is still in the queue, and a new run finishes it.
    assert await publisher.depth(EVENT) == len(late)
    slow.times = 0
    again = serve(
        "-c", str(tmp_path / "app.properties"), "--handlers", str(tmp_path / "handlers.json")
    )
    await eventually(lambda: completed(double, workflows) == MESSAGES, 30, "all done")
    await eventually(lambda: _depth_zero(publisher), 20, "an empty queue")
    again.signal(signal.SIGINT)
    assert await again.wait_exit() == 0, again.text()


async def _depth_zero(publisher: Publisher) -> bool:
    return await publisher.depth(EVENT) == 0
