"""Consuming: one aiokafka consumer per subscription, in a consumer group, with manual commits.

Offsets are committed only up to the lowest offset still unsettled in each partition: every
record fetched is *pending* until it is acked or dead-lettered, and the commit position of a
partition is its first pending offset (or the next offset to fetch when none is pending). So
however many deliveries are handled concurrently, a commit never passes one that is not done.

A nack keeps the record pending and hands it out again after the requested delay, from this
consumer, while the partition's later records keep flowing. After ``max-deliveries``
deliveries a nack sends the record to the dead-letter topic, and only then lets the commit
pass it.

A rebalance commits what is done in the partitions being taken away, then forgets them:
deliveries of those partitions still in flight are settled without effect, and the new owner
receives them again from the committed offset (at-least-once; never a commit past them).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

import structlog
from aiokafka import ConsumerRebalanceListener, TopicPartition  # type: ignore[import-untyped]
from aiokafka.errors import KafkaError  # type: ignore[import-untyped]

from conductor_events.backend import Delivery, DeliveryHandle, SubscribeOptions, Subscription
from conductor_events.errors import QueueError
from conductor_events.messages import Message, decode_payload
from conductor_events_kafka import wire

if TYPE_CHECKING:
    from conductor_events_kafka.client import KafkaQueueClient

log = structlog.get_logger(__name__)

REVOKE_COMMIT_TIMEOUT = 5.0
"""Seconds a rebalance (or a close) waits for the commit of the partitions it gives up."""

DLQ_RETRY_DELAY = 1.0
"""Seconds before a record whose dead-lettering failed is delivered again."""

_MESSAGE_ID = wire.MESSAGE_ID
_DLQ_REASON = wire.DLQ_REASON


class _Partition:
    """Commit bookkeeping of one assigned partition, for one assignment.

    Each assignment of a partition gets a new one, so the handles of the records fetched under
    it point at it (instead of each carrying its subscription, partition and assignment) and a
    handle's partition is still assigned as when it was fetched exactly while the
    subscription's bookkeeping for that partition *is* this object.
    """

    __slots__ = ("committed", "done", "next_offset", "owner", "pending", "tp")

    def __init__(self, owner: KafkaSubscription, tp: Any) -> None:
        self.owner = owner
        self.tp = tp
        self.pending: deque[int] = deque()
        self.done: set[int] = set()
        self.next_offset: int | None = None
        self.committed: int | None = None

    def fetched(self, offsets: list[int]) -> None:
        """Records were fetched (in offset order): they are pending until settled."""
        if offsets:
            self.pending.extend(offsets)
            self.next_offset = offsets[-1] + 1

    def settle(self, offsets: Iterable[int]) -> None:
        """Records are done; the commit may pass them once every earlier one is done too."""
        pending, done = self.pending, self.done
        for offset in offsets:
            if pending and pending[0] == offset:
                pending.popleft()
            else:
                done.add(offset)  # settled ahead of an earlier offset: the commit waits for it
        while done and pending and pending[0] in done:
            done.discard(pending.popleft())

    def settle_one(self, offset: int) -> None:
        """:meth:`settle` of one offset (each ``ack``), without the list and the loop."""
        pending = self.pending
        if pending and pending[0] == offset:
            pending.popleft()
            done = self.done
            while done and pending and pending[0] in done:
                done.discard(pending.popleft())
        else:
            self.done.add(offset)  # an earlier offset is still pending: the commit waits

    def commit_target(self) -> int | None:
        """The offset to commit now, or ``None`` when there is nothing new to commit."""
        target = self.pending[0] if self.pending else self.next_offset
        if target is None or (self.committed is not None and target <= self.committed):
            return None
        return target


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, subscription: KafkaSubscription) -> None:
        self._subscription = subscription

    async def on_partitions_revoked(self, revoked: Iterable[Any]) -> None:
        await self._subscription._revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[Any]) -> None:
        self._subscription._assigned(set(assigned))


class KafkaSubscription(Subscription):
    """One consumer in ``group`` reading ``topic``."""

    def __init__(
        self, client: KafkaQueueClient, topic: str, group: str, options: SubscribeOptions
    ) -> None:
        super().__init__(options)
        self.client = client
        self.topic = topic
        self.group = group
        settings = client.settings
        self.poll_interval = settings.poll_time_duration.total_seconds()
        self._max_deliveries = settings.max_deliveries
        self._conductor_shape = settings.payload_format == "conductor"
        self._commit_interval = settings.commit_interval.total_seconds()
        self._consumer: Any = client.new_consumer(topic, group)
        self._partitions: dict[Any, _Partition] = {}
        self._retries: list[tuple[float, int, _Partition, Any, int]] = []
        self._retry_seq = itertools.count()
        self._dirty = asyncio.Event()
        self._commit_lock = asyncio.Lock()
        self._committer: asyncio.Task[None] | None = None
        self._joined = asyncio.Event()

    # -- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (connection errors surface here) and start joining the group."""
        await self._consumer.start()
        self._consumer.subscribe([self.topic], listener=_Listener(self))
        self._committer = asyncio.create_task(
            self._commit_loop(), name=f"kafka-commit-{self.topic}"
        )

    async def wait_joined(self, timeout: float) -> bool:
        """Wait until the group gave this consumer its partitions (maybe none); ``False``
        when that takes longer than ``timeout`` (joining goes on in the background)."""
        try:
            async with asyncio.timeout(timeout):
                await self._joined.wait()
        except TimeoutError:
            return False
        return True

    async def abort(self) -> None:
        """Stop after a failed start (nothing was received: nothing to settle or commit)."""
        await self._stop_committer()
        with contextlib.suppress(Exception):
            await self._consumer.stop()

    async def _close(self) -> None:
        await self._stop_committer()
        try:
            async with asyncio.timeout(REVOKE_COMMIT_TIMEOUT):
                await self.commit()
        except (TimeoutError, KafkaError) as exc:
            # Not committed: the group's next consumer receives those records again.
            log.warning("kafka.commit.close_failed", topic=self.topic, error=str(exc))
        finally:
            try:
                await self._consumer.stop()
            except Exception as exc:
                log.warning("kafka.consumer.close_failed", topic=self.topic, error=str(exc))
            self.client._forget(self)

    async def _stop_committer(self) -> None:
        task, self._committer = self._committer, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- rebalancing -----------------------------------------------------------------------

    def _assigned(self, assigned: set[Any]) -> None:
        for tp in assigned:
            # A partition already known was fetched from before this callback ran (revoking
            # forgets every partition), so its bookkeeping belongs to this assignment.
            if tp.topic == self.topic and tp not in self._partitions:
                self._partitions[tp] = _Partition(self, tp)
        self._joined.set()
        log.debug(
            "kafka.partitions.assigned",
            topic=self.topic,
            group=self.group,
            partitions=sorted(tp.partition for tp in assigned),
        )

    async def _revoked(self, revoked: set[Any]) -> None:
        gone = revoked & set(self._partitions)
        if not gone:
            return
        try:
            async with asyncio.timeout(REVOKE_COMMIT_TIMEOUT):
                await self.commit(gone)
        except (TimeoutError, KafkaError) as exc:
            log.warning(
                "kafka.commit.revoke_failed", topic=self.topic, group=self.group, error=str(exc)
            )
        for tp in gone:
            del self._partitions[tp]
        # Not handed out yet: the new owner of their partitions delivers them instead.
        self._discard_buffered(
            lambda handle: isinstance(handle, KafkaHandle) and handle._source.tp in gone
        )
        log.debug(
            "kafka.partitions.revoked",
            topic=self.topic,
            group=self.group,
            partitions=sorted(tp.partition for tp in gone),
        )

    # -- committing ------------------------------------------------------------------------

    async def _commit_loop(self) -> None:
        """Commit what was acked, at most once per ``commit-interval`` counted from the start
        of the previous commit, so an ack waits at most about one interval to be committed.
        (This task runs only when the consumer lets the loop run: ``receive`` yields to it
        regularly, however fast the deliveries come from the buffer.)"""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            started = time.monotonic()
            try:
                await self.commit()
            except KafkaError as exc:
                log.warning(
                    "kafka.commit.failed", topic=self.topic, group=self.group, error=str(exc)
                )
            if self._commit_interval > 0:
                await asyncio.sleep(max(0.0, started + self._commit_interval - time.monotonic()))

    async def commit(self, only: set[Any] | None = None) -> None:
        """Commit each partition's first unsettled offset now (of the partitions ``only``
        names, when given). Acks are committed in the background anyway; this is for tests
        and for callers that want the position stored before a pause."""
        async with self._commit_lock:
            targets: list[tuple[Any, _Partition, int]] = []
            for tp, state in list(self._partitions.items()):
                if only is not None and tp not in only:
                    continue
                target = state.commit_target()
                if target is not None:
                    targets.append((tp, state, target))
            if not targets:
                return
            await self._consumer.commit({tp: target for tp, _, target in targets})
            for _, state, target in targets:
                state.committed = target

    def _owns(self, source: _Partition) -> bool:
        """Whether a partition is still assigned as when ``source`` was its bookkeeping."""
        return self._partitions.get(source.tp) is source

    def _settle(self, handle: KafkaHandle) -> None:
        """A record is done (acked or dead-lettered): let the commit pass it."""
        source = handle._source
        if self._partitions.get(source.tp) is source:
            source.settle_one(handle.record.offset)
        else:
            self._stale(source, [handle.record.offset])
        self._dirty.set()

    def _settle_offsets(self, handles: Iterable[KafkaHandle]) -> None:
        """Settle records a run at a time: consecutive ones of one partition and one
        assignment (as a fetched batch comes) share one bookkeeping lookup."""
        source: _Partition | None = None
        offsets: list[int] = []
        for handle in handles:
            if handle._source is not source:
                if source is not None:
                    self._settle_run(source, offsets)
                source, offsets = handle._source, []
            offsets.append(handle.record.offset)
        if source is not None:
            self._settle_run(source, offsets)
        self._dirty.set()

    def _settle_run(self, source: _Partition, offsets: list[int]) -> None:
        if self._partitions.get(source.tp) is source:
            source.settle(offsets)
        else:
            self._stale(source, offsets)

    def _stale(self, source: _Partition, offsets: list[int]) -> None:
        log.debug(
            "kafka.delivery.stale",
            topic=self.topic,
            partition=source.tp.partition,
            offsets=offsets,
            hint="its partition was reassigned; the new owner delivers it again",
        )

    async def _ack_many(self, handles: Sequence[DeliveryHandle]) -> list[Exception | None]:
        """Acks are bookkeeping here (the commit loop stores the offsets), so a batch is one
        pass over the offsets and cannot fail."""
        # The base class checked that each came from this subscription: all are ours.
        self._settle_offsets(cast("Sequence[KafkaHandle]", handles))
        return [None] * len(handles)

    # -- fetching --------------------------------------------------------------------------

    def _schedule(self, handle: KafkaHandle, delay: float) -> None:
        """Hand ``handle``'s record out again after ``delay`` seconds (still pending)."""
        heapq.heappush(
            self._retries,
            (
                time.monotonic() + delay,
                next(self._retry_seq),
                handle._source,
                handle.record,
                handle.attempt + 1,
            ),
        )

    def _due(self, limit: int) -> list[Delivery]:
        due: list[Delivery] = []
        now = time.monotonic()
        while self._retries and self._retries[0][0] <= now and len(due) < limit:
            _, _, source, record, attempt = heapq.heappop(self._retries)
            if self._owns(source):
                due += _deliveries(source, (record,), attempt)
        return due

    async def _fetch(self, max_messages: int, timeout: float) -> list[Delivery]:
        due = self._due(max_messages)
        if due:
            return due
        if self._retries:
            timeout = max(0.0, min(timeout, self._retries[0][0] - time.monotonic()))
        try:
            batches = await self._consumer.getmany(
                timeout_ms=int(timeout * 1000), max_records=max_messages
            )
        except KafkaError as exc:
            log.warning("kafka.fetch.failed", topic=self.topic, error=str(exc))
            await asyncio.sleep(min(timeout, self.poll_interval))
            return []
        deliveries: list[Delivery] = []
        for tp, records in batches.items():
            state = self._partitions.get(tp)
            if state is None:
                # Fetched before the assignment callback ran: the partition is ours (a
                # revoked one never reaches here), so start its bookkeeping now; dropping
                # the records would let a later commit pass them.
                state = self._partitions[tp] = _Partition(self, tp)
            state.fetched([record.offset for record in records])
            deliveries += _deliveries(state, records, 1)
        return deliveries

    # -- dead-lettering --------------------------------------------------------------------

    async def _send_to_dlq(self, handle: KafkaHandle, reason: str) -> None:
        topic = self.client.settings.dlq_topic_for(self.topic)
        headers = [
            (name, value)
            for name, value in handle.record_headers
            if not name.startswith("conductor.dlq.")
        ]
        if not any(name == wire.MESSAGE_ID for name, _ in headers):
            headers.append((wire.MESSAGE_ID, handle.message_id.encode()))
        headers += [
            (wire.DLQ_REASON, reason.encode()),
            (wire.DLQ_TOPIC, handle.topic.encode()),
            (wire.DLQ_PARTITION, str(handle.partition).encode()),
            (wire.DLQ_OFFSET, str(handle.offset).encode()),
            (wire.DLQ_ATTEMPTS, str(handle.attempt).encode()),
        ]
        try:
            await self.client.send_record(topic, handle.record_key, handle.value, headers)
        except (KafkaError, QueueError, OSError) as exc:
            log.error(
                "kafka.dlq.publish.failed",
                topic=self.topic,
                dlq_topic=topic,
                partition=handle.partition,
                offset=handle.offset,
                message_id=handle.message_id,
                error=str(exc),
            )
            raise QueueError(
                f"kafka: dead-lettering {handle.message_id} to {topic!r} failed: {exc}; "
                "the record is not acked"
            ) from exc
        log.info(
            "kafka.dlq.published",
            topic=self.topic,
            dlq_topic=topic,
            message_id=handle.message_id,
            reason=reason,
        )


def _deliveries(source: _Partition, records: Iterable[Any], attempt: int) -> list[Delivery]:
    """The deliveries of records fetched from ``source``'s partition. Runs once per record at
    the consumer's full rate, so the loop is written out here with the names it uses bound once
    per batch, and builds what a delivery must hold (the payload, the message, the handle) and
    nothing else."""
    conductor_shape = source.owner._conductor_shape
    split_headers = wire.split_headers
    decode = decode_payload
    now = time.time
    deliveries: list[Delivery] = []
    append = deliveries.append
    for record in records:
        raw_key = record.key
        key = None if raw_key is None else raw_key.decode("utf-8", "replace")
        raw_headers = record.headers
        if raw_headers:
            user_headers, own = split_headers(raw_headers)
            message_id = own.get(_MESSAGE_ID)
            reason = own.get(_DLQ_REASON)
        else:
            user_headers, message_id, reason = {}, None, None
        if not message_id:  # none, or an empty header: no id
            message_id = f"{record.partition}-{record.offset}"
        elif key == message_id:
            key = None  # the publisher had no key: the record key is the message id
        value = record.value
        payload = None if value is None else decode(value)
        if conductor_shape:
            payload = wire.conductor_shape(wire.text(raw_key), user_headers, payload)
        timestamp = record.timestamp
        message = Message(
            payload, message_id, user_headers, key, timestamp / 1000 if timestamp else now()
        )
        if reason is None:
            append(Delivery(message, attempt, KafkaHandle(source, record, attempt)))
        else:
            append(
                Delivery(
                    message,
                    attempt,
                    KafkaHandle(source, record, attempt),
                    dead_letter_reason=reason,
                )
            )
    return deliveries


def _message_id(record: Any) -> str:
    """The message id :func:`_deliveries` gave the record's message."""
    _, own = wire.split_headers(record.headers or ())
    return own.get(_MESSAGE_ID) or f"{record.partition}-{record.offset}"


class KafkaHandle(DeliveryHandle):
    """A record from a Kafka partition, as ``delivery.handle``. The raw record is available:
    ``topic``, ``partition``, ``offset``, ``record_key`` (bytes), ``record_headers`` (name,
    bytes) and ``value`` (bytes), for example to read a value that is not UTF-8.

    One is built per record, so it holds only the record, the attempt and the bookkeeping of
    the record's partition for the assignment it was fetched under (shared by that
    assignment's records; it knows the subscription). The message id, needed only to
    dead-letter, is read from the record again then.
    """

    __slots__ = ("_source", "attempt", "record")

    def __init__(self, source: _Partition, record: Any, attempt: int) -> None:
        self._source = source
        self.record = record
        self.attempt = attempt

    @property
    def message_id(self) -> str:
        """The id of the record's message (its ``conductor.message-id`` header, else
        partition-offset)."""
        return _message_id(self.record)

    @property
    def topic(self) -> str:
        return str(self.record.topic)

    @property
    def partition(self) -> int:
        return int(self.record.partition)

    @property
    def offset(self) -> int:
        return int(self.record.offset)

    @property
    def record_key(self) -> bytes | None:
        key: bytes | None = self.record.key
        return key

    @property
    def record_headers(self) -> list[tuple[str, bytes]]:
        return list(self.record.headers or ())

    @property
    def value(self) -> bytes | None:
        value: bytes | None = self.record.value
        return value

    async def ack(self) -> None:
        self._source.owner._settle(self)

    async def nack(self, delay: float, reason: str | None) -> None:
        owner = self._source.owner
        if not owner._owns(self._source):
            return  # its partition moved: the new owner delivers it again
        if self.attempt >= owner._max_deliveries:
            why = reason or f"nacked {self.attempt} times"
            try:
                await owner._send_to_dlq(self, why)
            except QueueError:
                # Not acked, not lost: delivered again, and dead-lettering is tried again.
                owner._schedule(self, max(delay, DLQ_RETRY_DELAY))
                return
            owner._settle(self)
            return
        owner._schedule(self, delay)

    async def dead_letter(self, reason: str) -> None:
        owner = self._source.owner
        await owner._send_to_dlq(self, reason)
        owner._settle(self)

    async def extend(self, seconds: float) -> None:
        """Kafka has no visibility timeout: a record stays pending until it is settled."""

    async def release(self) -> None:
        owner = self._source.owner
        if not owner.closed:
            owner._schedule(self, 0.0)
        # Closing: the record stays pending, so the final commit stops before it and the
        # group's next consumer of the partition receives it.


__all__ = ["KafkaHandle", "KafkaSubscription", "TopicPartition"]
