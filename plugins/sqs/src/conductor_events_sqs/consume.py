"""Consuming from SQS: concurrent long-polling receivers, the subscription, its deliveries.

A subscription starts with one receiver. A receiver whose ReceiveMessage came back full starts
another, up to ``prefetch / batch-size`` of them; one that came back empty stops while others
run. So an idle queue costs one long poll per ``wait-time``, and a busy one is drained by
concurrent calls. Receivers never fetch past the subscriber's limits: messages read ahead
(buffered or requested) stay within ``prefetch``, and with those in flight within
``max_in_flight``.

Each ReceiveMessage runs on a daemon thread of its own, so a 20 s long poll never holds up
the event loop, a close, or the process's exit. A call that returns after its subscription
closed makes its messages visible again at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from conductor_events.backend import Delivery, DeliveryHandle, SubscribeOptions, Subscription
from conductor_events.errors import QueueError
from conductor_events_sqs.batching import Outcome
from conductor_events_sqs.signals import DaemonThreads, Signal
from conductor_events_sqs.wire import (
    SYSTEM_ATTRIBUTES,
    attributes_size,
    dead_letter_fields,
    received_message,
    utf8_size,
)

if TYPE_CHECKING:
    from conductor_events_sqs.client import SqsQueue, SqsQueueClient

log = structlog.get_logger(__name__)

MAX_VISIBILITY = 43_200
"""SQS's largest visibility timeout, in seconds (12 hours)."""

MAX_RECEIVERS = 32
MAX_BACKOFF = 5.0
SETTLE_LINGER = 0.02
"""Seconds a receiver may wait for room for a whole batch while deliveries are in flight."""

RawMessage = dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeadLetters:
    """Where a queue's dead letters go, and after how many deliveries.

    ``native``: the queue has an SQS redrive policy, which also moves messages whose consumer
    never settled them; the plugin's own move (on nack past the limit, or ``dead_letter``)
    adds the reason, which SQS's move cannot record.
    """

    queue: SqsQueue
    max_receive_count: int
    native: bool


class _Poll:
    """One ReceiveMessage call on a daemon thread.

    The subscription may give up on the call (:meth:`abandon`) when it closes; the thread then
    makes whatever the call received visible again itself.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        call: Callable[[], list[RawMessage]],
        release: Callable[[list[RawMessage]], None],
        threads: DaemonThreads,
    ) -> None:
        self.future: asyncio.Future[list[RawMessage]] = loop.create_future()
        self._loop = loop
        self._call = call
        self._release = release
        self._lock = threading.Lock()
        self._abandoned = False
        self._handed_over = False
        threads.run(self._run)

    def _run(self) -> None:
        result: list[RawMessage] = []
        error: BaseException | None = None
        try:
            result = self._call()
        except BaseException as exc:
            error = exc
        with self._lock:
            self._handed_over = not self._abandoned
        if not self._handed_over:
            if result:
                self._release(result)
            return
        try:
            self._loop.call_soon_threadsafe(self._resolve, result, error)
        except RuntimeError:  # the event loop is gone: nobody will take these messages
            if result:
                self._release(result)

    def _resolve(self, result: list[RawMessage], error: BaseException | None) -> None:
        if self.future.done():
            return
        if error is not None:
            self.future.set_exception(error)
        else:
            self.future.set_result(result)

    def abandon(self) -> bool:
        """Give up on the call. True when its result is already on its way to the loop, and
        so the caller's to release."""
        with self._lock:
            if not self._handed_over:
                self._abandoned = True
            return self._handed_over

    def release_when_done(self) -> None:
        """Release the result when it arrives (the caller cannot wait for it)."""

        def done(future: asyncio.Future[list[RawMessage]]) -> None:
            if not future.cancelled() and future.exception() is None and future.result():
                threading.Thread(target=self._release, args=(future.result(),), daemon=True).start()

        self.future.add_done_callback(done)


class SqsSubscription(Subscription):
    """Messages of one SQS queue; see the module docstring for how receiving scales."""

    def __init__(
        self,
        client: SqsQueueClient,
        queue: SqsQueue,
        dead_letters: DeadLetters | None,
        options: SubscribeOptions,
    ) -> None:
        super().__init__(options)
        settings = client.settings
        self.client = client
        self.queue = queue
        self.dead_letters = dead_letters
        self._batch = settings.batch_size
        self._wait = settings.wait_seconds
        self._visibility = settings.visibility_seconds
        self._idle_pause = settings.poll_time_duration.total_seconds()
        ahead = min(options.prefetch, options.max_in_flight)
        self._max_receivers = min(MAX_RECEIVERS, math.ceil(ahead / settings.batch_size))
        self._ready: deque[Delivery] = deque()
        self._requested = 0
        self._receivers = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._arrived = Signal()
        self._capacity = Signal()
        self._stopping = asyncio.Event()
        self._stop_signal = Signal()
        self._stopped: asyncio.Future[None] | None = None
        self._full_batch = min(settings.batch_size, options.prefetch, options.max_in_flight)
        queue.subscriptions.add(self)

    # -- receiving -------------------------------------------------------------------------

    def _room(self) -> int:
        """Messages the receivers may still ask for: read-ahead stays within ``prefetch``,
        and everything held within ``max_in_flight``."""
        ahead = self.buffered + len(self._ready) + self._requested
        return min(
            self.options.prefetch - ahead, self.options.max_in_flight - self.in_flight - ahead
        )

    @property
    def unsettled(self) -> int:
        """Deliveries received and not settled: in flight, or buffered for a handler."""
        return self.in_flight + self.buffered + len(self._ready)

    def _spawn(self) -> None:
        self._receivers += 1
        task = asyncio.get_running_loop().create_task(self._receiver())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _pause(self, seconds: float) -> None:
        if not self._stopping.is_set():
            await self._stop_signal.wait(seconds)

    async def _receiver(self) -> None:
        backoff = self._idle_pause or 0.1
        try:
            while not self._stopping.is_set():
                room = self._room()
                if room <= 0:
                    await self._capacity.wait()
                    continue
                room = await self._wait_for_a_full_batch(room)
                count = min(self._batch, room)
                self._requested += count
                try:
                    received = await self._receive(count)
                except QueueError as exc:
                    log.warning("sqs.receive.failed", queue=self.queue.name, error=str(exc))
                    await self._pause(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                    continue
                finally:
                    self._requested -= count
                if received is None:
                    return
                backoff = self._idle_pause or 0.1
                if received:
                    self._ready.extend(_delivery(self, raw) for raw in received)
                    self._arrived.fire()
                    if (
                        len(received) == count
                        and self._receivers < self._max_receivers
                        and self._room() > 0
                    ):
                        self._spawn()
                elif self._receivers > 1:
                    return
                else:
                    await self._pause(self._idle_pause)
        finally:
            self._receivers -= 1

    async def _wait_for_a_full_batch(self, room: int) -> int:
        """With deliveries still in flight, wait briefly for room for a whole batch: their
        settlements tend to come together, and one receive of 10 beats ten of 1."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_LINGER
        while 0 < room < self._full_batch and self.in_flight > 0 and not self._stopping.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await self._capacity.wait(remaining)
            room = self._room()
        return room

    async def _receive(self, count: int) -> list[RawMessage] | None:
        """One ReceiveMessage; ``None`` when the subscription stopped meanwhile."""
        await self.client.clients()
        poll_client = self.client.poll_client()
        call = functools.partial(
            _receive_messages,
            poll_client.receive_message,
            QueueUrl=self.queue.url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=self._wait,
            VisibilityTimeout=self._visibility,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=SYSTEM_ATTRIBUTES,
        )
        release = functools.partial(_release_raw, self.client, self.queue.url)
        self.client.requests.by_operation["receive_message"] += 1
        loop = asyncio.get_running_loop()
        poll = _Poll(loop, call, release, self.client.poll_threads)
        if self._stopped is None:
            self._stopped = loop.create_future()
        waiting: list[asyncio.Future[Any]] = [poll.future, self._stopped]
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            if poll.abandon():
                poll.release_when_done()
            raise
        if not poll.future.done():
            if poll.abandon():
                with contextlib.suppress(Exception):
                    await self._release_raw(await poll.future)
            return None
        try:
            received = poll.future.result()
        except (ClientError, BotoCoreError) as exc:
            raise QueueError(self.client.describe(exc, queue=self.queue.name)) from exc
        if self._stopping.is_set():
            await self._release_raw(received)
            return None
        return received

    async def _release_raw(self, received: list[RawMessage]) -> None:
        self.client.note_returned(str(raw["MessageId"]) for raw in received)
        outcomes = [self.queue.visibility.submit((raw["ReceiptHandle"], 0)) for raw in received]
        await asyncio.gather(*outcomes, return_exceptions=True)

    async def _fetch(self, max_messages: int, timeout: float) -> list[Delivery]:
        if self._receivers == 0 and not self._stopping.is_set():
            self._spawn()
        elif self._room() > 0:
            # Room opens without a settlement too: the core handed out what it had buffered,
            # and its handlers still hold it (hung, or past their visibility timeout). Without
            # this wake-up the receivers would wait for an ack that never comes, and messages
            # whose visibility timeout ran out would not be received again.
            self._capacity.fire()
        if not self._ready:
            await self._arrived.wait(timeout)
        taken: list[Delivery] = []
        while self._ready and len(taken) < max_messages:
            taken.append(self._ready.popleft())
        return taken

    async def _ack_many(self, handles: Sequence[DeliveryHandle]) -> list[Exception | None]:
        """The whole batch at once: DeleteMessageBatch calls of 10, no waiting for more."""
        own = [h for h in handles if isinstance(h, SqsHandle)]
        if len(own) != len(handles):  # not ours: the base class's one-by-one path
            return await super()._ack_many(handles)
        outcomes = await self.client.delete_now(self.queue, [h.receipt_handle for h in own])
        errors: list[Exception | None] = []
        for handle, outcome in zip(own, outcomes, strict=True):
            try:
                handle.check(outcome, "ack")
            except QueueError as exc:
                errors.append(exc)
            else:
                errors.append(None)
        self.client.forget_returned(
            h.sqs_message_id for h, error in zip(own, errors, strict=True) if error is None
        )
        return errors

    def _on_settled(self, deliveries: Sequence[Delivery]) -> None:
        super()._on_settled(deliveries)
        room = self._room()
        if room == 1 or room >= self._full_batch or self.in_flight == 0:
            self._capacity.fire()  # room opened, or a whole batch fits: wake the receivers

    async def close(self) -> None:
        """Stop receiving at once (long polls in progress are abandoned), then settle or
        return every message, as :meth:`Subscription.close` does."""
        if self.closed:
            return
        self._stopping.set()
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)
        for signal in (self._stop_signal, self._arrived, self._capacity):
            signal.fire()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        ready = list(self._ready)
        self._ready.clear()
        await asyncio.gather(*(d.release() for d in ready), return_exceptions=True)
        # wake a receive() waiting in _fetch: it then sees the subscription closed by the
        # base close below, which waits for that fetch to return
        self._arrived.fire()
        try:
            await super().close()
        finally:
            self.queue.subscriptions.discard(self)


def _receive_messages(receive: Callable[..., Any], **kwargs: Any) -> list[RawMessage]:
    response = receive(**kwargs)
    return list(response.get("Messages", []))


def _release_raw(client: SqsQueueClient, queue_url: str, received: list[RawMessage]) -> None:
    client.release_now(queue_url, received)


def _delivery(subscription: SqsSubscription, raw: RawMessage) -> Delivery:
    """The delivery of a ReceiveMessage entry. ``attempt`` counts deliveries: SQS's
    ApproximateReceiveCount, less the receives this client gave back unhandled (prefetched,
    or returned at close)."""
    message, meta = received_message(raw)
    system = raw.get("Attributes") or {}
    reason = meta.get("dead_letter_reason")
    source_arn = system.get("DeadLetterQueueSourceArn")
    if reason is None and source_arn:
        reason = f"moved by the SQS redrive policy of {source_arn} (maxReceiveCount reached)"
    receives = int(system.get("ApproximateReceiveCount", 1))
    attempt = max(1, receives - subscription.client.returned(str(raw["MessageId"])))
    return Delivery(
        message,
        attempt,
        SqsHandle(subscription, raw, message.id, attempt),
        dead_letter_reason=str(reason) if reason is not None else None,
    )


class SqsHandle(DeliveryHandle):
    """A received SQS message, as ``delivery.handle``: ``receipt_handle``, ``sqs_message_id``
    and the ReceiveMessage entry itself as ``raw``."""

    __slots__ = ("_sqs", "attempt", "message_id", "raw")

    def __init__(
        self, subscription: SqsSubscription, raw: RawMessage, message_id: str, attempt: int
    ) -> None:
        self._sqs = subscription
        self.raw = raw
        self.message_id = message_id
        self.attempt = attempt

    @property
    def receipt_handle(self) -> str:
        return str(self.raw["ReceiptHandle"])

    @property
    def sqs_message_id(self) -> str:
        """The id SQS gave the message (``message.id`` is the publisher's)."""
        return str(self.raw["MessageId"])

    def check(self, outcome: Outcome | None, action: str) -> None:
        """Raise for a failed settlement; log one whose receipt handle had expired (the
        message is delivered again)."""
        if outcome is None:
            return
        queue = self._sqs.queue.name
        if outcome.fatal:
            raise QueueError(
                f"{action} of message {self.message_id} on SQS queue {queue!r} failed: "
                f"{outcome.reason}"
            )
        log.warning(
            "sqs.delivery.expired",
            action=action,
            queue=queue,
            message_id=self.message_id,
            reason=outcome.reason,
            hint="the receipt handle is no longer valid (the visibility timeout passed); "
            "the message is delivered again",
        )

    async def ack(self) -> None:
        self.check(await self._sqs.queue.deleter.submit(self.receipt_handle), "ack")
        self._sqs.client.forget_returned([self.sqs_message_id])

    async def _visibility(self, seconds: float, action: str) -> None:
        value = min(MAX_VISIBILITY, math.ceil(max(0.0, seconds)))
        outcome = await self._sqs.queue.visibility.submit((self.receipt_handle, value))
        self.check(outcome, action)

    async def nack(self, delay: float, reason: str | None) -> None:
        dead_letters = self._sqs.dead_letters
        if dead_letters is not None and self.attempt >= dead_letters.max_receive_count:
            await self._move(
                f"{reason or 'nacked'} (delivery {self.attempt} of "
                f"{dead_letters.max_receive_count})"
            )
            return
        await self._visibility(delay, "nack")

    async def extend(self, seconds: float) -> None:
        await self._visibility(seconds, "extend")

    async def release(self) -> None:
        """Give the message back unhandled: visible at once, and not counted as an attempt
        (SQS's receive count cannot be lowered; this client remembers the difference)."""
        await self._visibility(0, "release")
        self._sqs.client.note_returned([self.sqs_message_id])

    async def dead_letter(self, reason: str) -> None:
        await self._move(reason)

    async def _move(self, reason: str) -> None:
        """Send the message to the dead-letter queue with the reason, then delete it here."""
        subscription = self._sqs
        dead_letters = subscription.dead_letters
        queue = subscription.queue
        if dead_letters is None:
            raise QueueError(
                f"SQS queue {queue.name!r} has no dead-letter queue: set "
                f"{subscription.client.settings.section}.dead-letter-queue (e.g. {{queue}}_dlq) "
                "or give the queue a redrive policy"
            )
        target = dead_letters.queue
        fields = dead_letter_fields(
            self.raw,
            reason=reason,
            source=queue.name,
            attempt=self.attempt,
            fifo=target.fifo,
            default_group=subscription.client.settings.fifo_message_group_id,
        )
        size = utf8_size(fields["MessageBody"]) + attributes_size(fields["MessageAttributes"])
        outcome = await target.sender.submit(fields, size)
        if outcome is not None:
            raise QueueError(
                f"moving message {self.message_id} from SQS queue {queue.name!r} to its "
                f"dead-letter queue {target.name!r} failed, it stays where it is: "
                f"{outcome.reason}"
            )
        log.info(
            "sqs.delivery.dead_lettered",
            queue=queue.name,
            dead_letter_queue=target.name,
            message_id=self.message_id,
            reason=reason,
        )
        await self.ack()
