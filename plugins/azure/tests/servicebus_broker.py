"""A Service Bus test broker: Azure Service Bus's AMQP 1.0 protocol on python-qpid-proton.

The official emulator needs Docker; this is a faithful test double of the parts of the
protocol the ``azure-servicebus`` SDK (7.x, pure-Python AMQP stack) uses, so the SDK's real
code runs over a real socket. It honours:

* connection strings with ``UseDevelopmentEmulator=true`` (no TLS, port kept): the client sends
  the SASL header and ``ANONYMOUS``, then plain AMQP; each sender and receiver opens its own
  connection with one session;
* claims-based security: a link pair addressed ``$cbs``; ``put-token`` requests carry a
  ``SharedAccessSignature`` whose HMAC-SHA256 signature is verified against the policy's key
  (a wrong key answers 401), and replies carry ``status-code``/``status-description`` with the
  request's message id as correlation id. Entity links are refused without a valid token;
* entity links: ``amqps://host:port/<entity>`` (scheme and host stripped), subscriptions
  ``<topic>/Subscriptions/<name>``, dead-letter queues ``<entity>/$DeadLetterQueue``, matched
  case-insensitively; unknown entities are refused with ``amqp:not-found``; the attach echoes
  source and target and announces the broker's max message size;
* batches: one transfer (message format 0x80013700) whose body is N ``data`` sections, each a
  complete encoded message. Proton's Python binding does not expose the message format, so a
  transfer made only of ``data`` sections whose contents each start with ``0x00 0x53`` (a
  described section) is read as a batch;
* deliveries: 16-byte delivery tags (the lock token is ``UUID(bytes_le=tag)``), annotations
  ``x-opt-sequence-number``, ``x-opt-enqueued-time``, ``x-opt-locked-until``, and the delivery
  count (earlier deliveries) in the header;
* settlement: Accepted = complete, Modified(delivery-failed) = abandon,
  Modified(undeliverable-here) = defer, Rejected(``com.microsoft:dead-letter``) = dead-letter
  with the reason and description copied into the application properties, Released = return
  without counting a delivery. The outcome is echoed settled, as the SDK waits for it; a
  settlement on an expired lock is answered with ``com.microsoft:message-lock-lost``. Expired
  locks redeliver with the delivery count + 1; past the entity's max delivery count the
  message is dead-lettered with reason ``MaxDeliveryCountExceeded``;
* ``$management`` (``<entity>/$management``, camelCase ``statusCode``/``statusDescription``):
  ``renew-lock``, ``peek-message``, ``schedule-message``, ``cancel-scheduled-message``,
  ``receive-by-sequence-number`` and ``update-disposition``.

Not modelled: sessions (session-enabled entities accept session ids but receive like plain
queues), filters and rules, transactions, duplicate detection, TTL expiry. One difference the
SDK shows: proton leaves default values out of the header it encodes, so a first delivery
(delivery count 0) reaches the SDK without a delivery count (``None``, where the service says
0); redeliveries carry it.

Run it in a thread with :meth:`ServiceBusBroker.start`; every call from another thread goes
through a command queue that the broker's own thread drains, so tests never touch proton
objects concurrently.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import itertools
import logging
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote_plus

from proton import (
    Array,
    Condition,
    Data,
    Delivery,
    Endpoint,
    Handler,
    Link,
    Message,
    symbol,
    timestamp,
    ulong,
)
from proton.reactor import Container

from conductor_events.testing.servers import free_port

T = TypeVar("T")

KEY_NAME = "RootManageSharedAccessKey"
DEFAULT_MAX_MESSAGE_SIZE = 256 * 1024
BATCH_FORMAT = 0x80013700
TICK = 0.02
CREDIT_WINDOW = 1000

DEAD_LETTER = "com.microsoft:dead-letter"
LOCK_LOST = "com.microsoft:message-lock-lost"
VENDOR = "com.microsoft:"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _copy(value: Any) -> Any:
    """Proton hands out binaries as memoryviews into a buffer it frees later: copy them."""
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, dict):
        return {_copy(k): _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _entity_path(address: str | None) -> str:
    """``amqps://host:port/queue`` -> ``queue`` (the SDK uses amqps even without TLS)."""
    text = address or ""
    if "://" in text:
        text = text.split("://", 1)[1]
        text = text.split("/", 1)[1] if "/" in text else ""
    return text.strip("/")


def _skip_value(buf: bytes, pos: int) -> int:
    """The offset just past the AMQP-encoded value at ``pos``."""
    code = buf[pos]
    pos += 1
    if code == 0x00:  # described: descriptor, then value
        return _skip_value(buf, _skip_value(buf, pos))
    width = {0x4: 0, 0x5: 1, 0x6: 2, 0x7: 4, 0x8: 8, 0x9: 16}.get(code >> 4)
    if width is not None:
        return pos + width
    if code >> 4 in (0xA, 0xC, 0xE):
        return pos + 1 + buf[pos]
    if code >> 4 in (0xB, 0xD, 0xF):
        return pos + 4 + int.from_bytes(buf[pos : pos + 4], "big")
    raise ValueError(f"unknown AMQP type code 0x{code:02x} at {pos - 1}")


def _binary(buf: bytes, pos: int) -> bytes:
    code = buf[pos]
    if code == 0xA0:
        return buf[pos + 2 : pos + 2 + buf[pos + 1]]
    size = int.from_bytes(buf[pos + 1 : pos + 5], "big")
    return buf[pos + 5 : pos + 5 + size]


def split_data_sections(payload: bytes) -> list[bytes] | None:
    """The messages of a batch transfer, or ``None`` when the transfer is one message.

    A batch (message format 0x80013700) may open with the envelope's own sections (the SDK
    copies the first message's properties there), followed by one ``data`` section per
    message, each holding a complete encoded message (so starting with ``0x00 0x53``).
    """
    data: list[bytes] = []
    pos = 0
    try:
        while pos < len(payload):
            if payload[pos : pos + 2] != b"\x00\x53":
                return None
            descriptor = payload[pos + 2]
            end = _skip_value(payload, pos)
            if descriptor == 0x75:
                section = _binary(payload, pos + 3)
                if not section.startswith(b"\x00\x53"):
                    return None
                data.append(bytes(section))
            elif data or descriptor in (0x76, 0x77):  # data, then something else: not a batch
                return None
            pos = end
    except (IndexError, ValueError):
        return None
    return data or None


@dataclass
class StoredMessage:
    """A message held by an entity, with what the broker adds to it."""

    sequence_number: int
    message: Message
    enqueued_ms: int
    size: int
    delivery_count: int = 0
    scheduled_ms: int = 0

    def __lt__(self, other: StoredMessage) -> bool:
        return self.sequence_number < other.sequence_number


@dataclass
class Lock:
    """A peek-lock: the message, its token, until when, and the delivery that carries it."""

    stored: StoredMessage
    token: uuid.UUID
    until_ms: int
    delivery: Any  # proton Delivery, None for receive-by-sequence-number
    entity: Entity


@dataclass
class Entity:
    """A queue, a topic subscription, or a dead-letter sub-queue."""

    path: str
    lock_duration: float = 30.0
    max_delivery_count: int = 10
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    requires_session: bool = False
    is_topic: bool = False
    available: list[StoredMessage] = field(default_factory=list)  # heap by sequence number
    locks: dict[uuid.UUID, Lock] = field(default_factory=dict)
    deferred: dict[int, StoredMessage] = field(default_factory=dict)
    scheduled: dict[int, StoredMessage] = field(default_factory=dict)
    subscriptions: dict[str, Entity] = field(default_factory=dict)
    consumers: list[Any] = field(default_factory=list)  # proton Sender links
    dead_letter: Entity | None = None
    sequence: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def depth(self) -> int:
        return len(self.available) + len(self.locks) + len(self.deferred)


class ServiceBusBroker(Handler):
    """The broker: one namespace with one shared-access policy, served on 127.0.0.1.

    Attributes:
        port: the listening port (``0`` picks a free one at start).
        key: the policy's shared access key.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        key_name: str = KEY_NAME,
        key: str | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        super().__init__()
        self.port = port or free_port()
        self.key_name = key_name
        self.key = key or base64.b64encode(uuid.uuid4().bytes * 2).decode()
        self.max_message_size = max_message_size
        self.entities: dict[str, Entity] = {}
        self.auth_failures = 0
        self._commands: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._container: Any = None
        self._acceptor: Any = None
        self._connections: set[Any] = set()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._stopping = False
        self._error: BaseException | None = None
        self._authorized: dict[Any, list[tuple[str, int]]] = {}  # connection -> (audience, exp)

    # -- life cycle (any thread) -----------------------------------------------------------

    @property
    def hostname(self) -> str:
        return f"127.0.0.1:{self.port}"

    def connection_string(self, key: str | None = None, entity: str | None = None) -> str:
        text = (
            f"Endpoint=sb://127.0.0.1:{self.port};SharedAccessKeyName={self.key_name};"
            f"SharedAccessKey={key or self.key};UseDevelopmentEmulator=true;"
        )
        return text + (f"EntityPath={entity};" if entity else "")

    def start(self, timeout: float = 10.0) -> None:
        # The SDK drops sockets without a close frame when a handler closes with
        # keep_alive=None; proton logs each such reset at error level. They are expected here.
        logging.getLogger("proton").setLevel(logging.CRITICAL)
        self._container = Container(self)
        self._thread = threading.Thread(target=self._run, name="servicebus-broker", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise RuntimeError(f"the Service Bus test broker did not start: {self._error!r}")
        if self._error is not None:
            raise RuntimeError(f"the Service Bus test broker failed: {self._error!r}")
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise

    def stop(self) -> None:
        self._stopping = True
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def restart(self) -> None:
        """Drop every connection and listen again on the same port, keeping the entities and
        their messages (locked ones become available again, as after a service restart)."""
        self.stop()
        for entity in self._all_entities():
            for lock in list(entity.locks.values()):
                entity.locks.pop(lock.token, None)
                heapq.heappush(entity.available, lock.stored)
            entity.consumers.clear()
        self._authorized.clear()
        self._stopping = False
        self._started.clear()
        self.start()

    def _run(self) -> None:
        try:
            self._container.run()
        except BaseException as exc:  # surfaced by start() and call()
            self._error = exc
            self._started.set()

    def call(self, function: Callable[[], T], timeout: float = 10.0) -> T:
        """Run ``function`` on the broker's thread and return its result."""
        done = threading.Event()
        result: list[Any] = []

        def run() -> None:
            try:
                result.append((True, function()))
            except BaseException as exc:
                result.append((False, exc))
            done.set()

        self._commands.put(run)
        if not done.wait(timeout):
            raise TimeoutError(f"the broker did not answer within {timeout}s ({self._error!r})")
        ok, value = result[0]
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    # -- entities (any thread) -------------------------------------------------------------

    def create_queue(
        self,
        name: str,
        *,
        lock_duration: float = 30.0,
        max_delivery_count: int = 10,
        requires_session: bool = False,
    ) -> None:
        def create() -> None:
            entity = Entity(
                name,
                lock_duration=lock_duration,
                max_delivery_count=max_delivery_count,
                max_message_size=self.max_message_size,
                requires_session=requires_session,
            )
            entity.dead_letter = Entity(f"{name}/$deadletterqueue")
            self.entities[name.lower()] = entity

        self.call(create)

    def create_topic(self, name: str) -> None:
        def create() -> None:
            self.entities[name.lower()] = Entity(name, is_topic=True)

        self.call(create)

    def create_subscription(
        self, topic: str, name: str, *, lock_duration: float = 30.0, max_delivery_count: int = 10
    ) -> None:
        def create() -> None:
            parent = self.entities[topic.lower()]
            path = f"{topic}/subscriptions/{name}"
            entity = Entity(
                path, lock_duration=lock_duration, max_delivery_count=max_delivery_count
            )
            entity.dead_letter = Entity(f"{path}/$deadletterqueue")
            parent.subscriptions[name.lower()] = entity

        self.call(create)

    def delete_entity(self, name: str) -> None:
        self.call(lambda: self.entities.pop(name.lower(), None))

    def depth(self, path: str) -> int:
        """Messages in an entity (available, locked and deferred)."""

        def count() -> int:
            entity = self._find(path)
            return 0 if entity is None else entity.depth()

        return self.call(count)

    def peek(self, path: str) -> list[dict[str, Any]]:
        """The entity's messages as plain dicts (body, properties, delivery count), in order."""

        def read() -> list[dict[str, Any]]:
            entity = self._find(path)
            if entity is None:
                return []
            held = [*entity.available, *(lock.stored for lock in entity.locks.values())]
            return [
                {
                    "sequence_number": s.sequence_number,
                    "message_id": s.message.id,
                    "body": _copy(s.message.body),
                    "properties": _copy(dict(s.message.properties or {})),
                    "delivery_count": s.delivery_count,
                    "group_id": s.message.group_id,
                    "annotations": _copy(dict(s.message.annotations or {})),
                }
                for s in sorted(held)
            ]

        return self.call(read)

    # -- proton events (broker thread) -----------------------------------------------------

    def on_reactor_init(self, event: Any) -> None:
        try:
            self._acceptor = event.container.listen(f"127.0.0.1:{self.port}")
        except BaseException as exc:
            self._error = exc
            self._started.set()
            event.container.stop()
            return
        event.container.schedule(TICK, self)
        self._started.set()

    def on_timer_task(self, event: Any) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                break
            command()
        if self._stopping:
            self._shut_down(event.container)
            return
        self._expire_and_schedule()
        event.container.schedule(TICK, self)

    def _shut_down(self, container: Any) -> None:
        """Stop as the service does on a restart: close every connection with
        ``amqp:connection:forced`` (clients reconnect), flush, then drop the sockets."""
        if self._acceptor is not None:
            self._acceptor.close()
            self._acceptor = None
        if not self._closing:
            self._closing = True
            for connection in list(self._connections):
                if connection.state & Endpoint.LOCAL_ACTIVE:
                    connection.condition = Condition(
                        "amqp:connection:forced",
                        "The service is restarting.",
                        {symbol("tracking-id"): ""},  # the SDK indexes all three fields
                    )
                    connection.close()
            container.schedule(0.1, self)
            return
        for connection in list(self._connections):
            transport = connection.transport
            if transport is not None:
                transport.close_tail()
                transport.close_head()
        self._connections.clear()
        self._closing = False
        container.stop()

    def on_connection_bound(self, event: Any) -> None:
        self._connections.add(event.connection)
        sasl = event.transport.sasl()
        sasl.allowed_mechs("ANONYMOUS")

    def on_connection_remote_open(self, event: Any) -> None:
        connection = event.connection
        if connection.state & Endpoint.LOCAL_UNINIT:
            connection.container = "servicebus-test-broker"
            connection.open()

    def on_session_remote_open(self, event: Any) -> None:
        session = event.session
        if session.state & Endpoint.LOCAL_UNINIT:
            session.open()

    def on_link_remote_open(self, event: Any) -> None:
        link = event.link
        if not link.state & Endpoint.LOCAL_UNINIT:
            return
        link.source.copy(link.remote_source)
        link.target.copy(link.remote_target)
        link.snd_settle_mode = link.remote_snd_settle_mode
        link.rcv_settle_mode = link.remote_rcv_settle_mode
        address = _entity_path(link.remote_target.address if link.is_receiver else None)
        if link.is_sender:
            address = _entity_path(link.remote_source.address)
        lowered = address.lower()
        if lowered == "$cbs" or lowered.endswith("/$management") or lowered == "$management":
            link.open()
            if link.is_receiver:
                link.flow(CREDIT_WINDOW)
            return
        entity, refusal = self._attach_entity(link.connection, address, link.is_sender)
        if entity is None:
            link.open()
            link.condition = refusal
            link.close()
            return
        link.max_message_size = (
            self.max_message_size if entity.is_topic else (entity.max_message_size)
        )
        link._entity_path = entity.path
        link.open()
        if link.is_receiver:
            link.flow(CREDIT_WINDOW)
        else:
            entity.consumers.append(link)
            self._pump(entity)

    def on_link_remote_close(self, event: Any) -> None:
        link = event.link
        self._forget_consumer(link)
        if link.state & Endpoint.LOCAL_ACTIVE:
            link.close()

    def on_session_remote_close(self, event: Any) -> None:
        if event.session.state & Endpoint.LOCAL_ACTIVE:
            event.session.close()

    def on_connection_remote_close(self, event: Any) -> None:
        connection = event.connection
        self._drop_connection(connection)
        if connection.state & Endpoint.LOCAL_ACTIVE:
            connection.close()

    def on_transport_closed(self, event: Any) -> None:
        if event.connection is not None:
            self._drop_connection(event.connection)

    def on_link_flow(self, event: Any) -> None:
        link = event.link
        if not link.is_sender:
            return
        path = getattr(link, "_entity_path", None)
        entity = self._find(path) if path else None
        if entity is not None:
            self._pump(entity)
        if link.drain_mode:
            link.drained()

    def on_delivery(self, event: Any) -> None:
        delivery = event.delivery
        link = delivery.link
        if link.is_receiver:
            if delivery.readable and not delivery.partial:
                self._incoming(link, delivery)
        elif delivery.updated:
            self._settlement(delivery)

    # -- incoming transfers ----------------------------------------------------------------

    def _incoming(self, link: Any, delivery: Any) -> None:
        payload = link.recv(delivery.pending) or b""
        link.advance()
        if link.credit < CREDIT_WINDOW // 2:
            link.flow(CREDIT_WINDOW - link.credit)
        address = _entity_path(link.remote_target.address)
        lowered = address.lower()
        if lowered == "$cbs":
            self._put_token(link, Message(), payload)
            delivery.update(Delivery.ACCEPTED)
            delivery.settle()
            return
        if lowered.endswith("$management"):
            self._management(link, address, payload)
            delivery.update(Delivery.ACCEPTED)
            delivery.settle()
            return
        entity = self._find(address)
        if entity is None:
            self._reject(delivery, "amqp:not-found", f"The messaging entity '{address}' is gone.")
            return
        size_limit = link.max_message_size or self.max_message_size
        if len(payload) > size_limit:
            self._reject(
                delivery,
                "amqp:link:message-size-exceeded",
                f"The received message (size {len(payload)} bytes) exceeds the limit "
                f"({size_limit} bytes) currently allowed on the link.",
            )
            return
        sections = split_data_sections(payload)
        encoded = sections if sections is not None else [payload]
        messages = []
        for data in encoded:
            message = Message()
            try:
                message.decode(data)
            except Exception as exc:
                self._reject(delivery, "amqp:decode-error", f"malformed message: {exc}")
                return
            messages.append((message, len(data)))
        for message, size in messages:
            self._enqueue(entity, message, size)
        delivery.update(Delivery.ACCEPTED)
        delivery.settle()

    @staticmethod
    def _reject(delivery: Any, condition: str, description: str) -> None:
        # All three error fields: the SDK indexes the info field even when it is empty.
        delivery.local.condition = Condition(condition, description, {symbol("tracking-id"): ""})
        delivery.update(Delivery.REJECTED)
        delivery.settle()

    def _enqueue(self, entity: Entity, message: Message, size: int, scheduled_ms: int = 0) -> int:
        targets = list(entity.subscriptions.values()) if entity.is_topic else [entity]
        first = 0
        for target in targets:
            copy = Message()
            copy.decode(message.encode())
            sequence = next(target.sequence)
            first = first or sequence
            stored = StoredMessage(sequence, copy, _now_ms(), size, scheduled_ms=scheduled_ms)
            if scheduled_ms > _now_ms():
                target.scheduled[sequence] = stored
            else:
                heapq.heappush(target.available, stored)
                self._pump(target)
        return first

    # -- deliveries to consumers -----------------------------------------------------------

    def _pump(self, entity: Entity) -> None:
        consumers = [link for link in entity.consumers if link.credit > 0]
        while entity.available and consumers:
            for link in list(consumers):
                if not entity.available:
                    break
                if link.credit <= 0:
                    consumers.remove(link)
                    continue
                self._deliver(entity, link, heapq.heappop(entity.available))

    def _deliver(self, entity: Entity, link: Any, stored: StoredMessage) -> None:
        token = uuid.uuid4()
        until = _now_ms() + int(entity.lock_duration * 1000)
        presettled = link.snd_settle_mode == Link.SND_SETTLED
        message = stored.message
        message.delivery_count = stored.delivery_count
        message.first_acquirer = stored.delivery_count == 0  # also makes proton send the header
        annotations = dict(message.annotations or {})
        annotations[symbol("x-opt-sequence-number")] = stored.sequence_number
        annotations[symbol("x-opt-enqueued-time")] = timestamp(stored.enqueued_ms)
        if not presettled:
            annotations[symbol("x-opt-locked-until")] = timestamp(until)
        annotations.pop(symbol("x-opt-lock-token"), None)
        message.annotations = annotations
        delivery = link.delivery(token.bytes_le)
        link.send(message.encode())
        link.advance()
        if presettled:
            delivery.settle()
            return
        stored.delivery_count += 1
        entity.locks[token] = Lock(stored, token, until, delivery, entity)
        delivery._lock_token = token

    def _settlement(self, delivery: Any) -> None:
        token = getattr(delivery, "_lock_token", None)
        if token is None:
            token = uuid.UUID(bytes_le=bytes(delivery.tag))
        path = getattr(delivery.link, "_entity_path", None)
        entity = self._find(path) if path else None
        lock = entity.locks.get(token) if entity is not None else None
        state = delivery.remote_state
        if lock is None or lock.until_ms < _now_ms():
            if lock is not None:
                self._expire(lock)
            self._reject(
                delivery,
                LOCK_LOST,
                "The lock supplied is invalid. Either the lock expired, or the message has "
                "already been removed from the queue.",
            )
            return
        self._apply(lock, state, delivery.remote)
        # Echo the outcome, settled: the SDK waits for it before a settle call returns.
        if state == Delivery.MODIFIED:
            delivery.local.failed = delivery.remote.failed
            delivery.local.undeliverable = delivery.remote.undeliverable
        delivery.update(state)
        delivery.settle()

    def _apply(self, lock: Lock, state: Any, remote: Any) -> None:
        entity = lock.entity
        entity.locks.pop(lock.token, None)
        stored = lock.stored
        if state == Delivery.ACCEPTED:
            return
        if state == Delivery.RELEASED:
            stored.delivery_count -= 1
            heapq.heappush(entity.available, stored)
        elif state == Delivery.MODIFIED and remote.undeliverable:
            entity.deferred[stored.sequence_number] = stored
            return
        elif state == Delivery.MODIFIED:
            self._requeue(entity, stored)
        elif state == Delivery.REJECTED:
            condition = remote.condition
            info = _copy(dict(condition.info or {})) if condition is not None else {}
            reason = info.get("DeadLetterReason") or info.get(symbol("DeadLetterReason"))
            description = info.get("DeadLetterErrorDescription") or info.get(
                symbol("DeadLetterErrorDescription")
            )
            self._dead_letter(entity, stored, reason, description)
            return
        self._pump(entity)

    def _requeue(self, entity: Entity, stored: StoredMessage) -> None:
        if stored.delivery_count >= entity.max_delivery_count:
            self._dead_letter(
                entity,
                stored,
                "MaxDeliveryCountExceeded",
                f"Message could not be consumed after {entity.max_delivery_count} delivery "
                "attempts.",
            )
        else:
            heapq.heappush(entity.available, stored)
            self._pump(entity)

    def _dead_letter(
        self, entity: Entity, stored: StoredMessage, reason: Any, description: Any
    ) -> None:
        target = entity.dead_letter
        if target is None:
            return
        message = stored.message
        properties = dict(message.properties or {})
        if reason is not None:
            properties["DeadLetterReason"] = str(reason)
        if description is not None:
            properties["DeadLetterErrorDescription"] = str(description)
        message.properties = properties  # type: ignore[assignment]  # proton types it None
        annotations = dict(message.annotations or {})
        annotations[symbol("x-opt-deadletter-source")] = entity.path
        message.annotations = annotations
        copy = StoredMessage(
            next(target.sequence), message, _now_ms(), stored.size, stored.delivery_count
        )
        heapq.heappush(target.available, copy)
        self._pump(target)

    def _expire(self, lock: Lock) -> None:
        if lock.entity.locks.pop(lock.token, None) is not None:
            self._requeue(lock.entity, lock.stored)

    def _expire_and_schedule(self) -> None:
        now = _now_ms()
        for entity in self._all_entities():
            for lock in [lock for lock in entity.locks.values() if lock.until_ms < now]:
                self._expire(lock)
            due = [s for s in entity.scheduled.values() if s.scheduled_ms <= now]
            for stored in due:
                entity.scheduled.pop(stored.sequence_number)
                heapq.heappush(entity.available, stored)
            if due:
                self._pump(entity)

    def _forget_consumer(self, link: Any) -> None:
        path = getattr(link, "_entity_path", None)
        entity = self._find(path) if path else None
        if entity is not None and link in entity.consumers:
            entity.consumers.remove(link)

    def _drop_connection(self, connection: Any) -> None:
        self._authorized.pop(connection, None)
        self._connections.discard(connection)
        for entity in self._all_entities():
            entity.consumers = [link for link in entity.consumers if link.connection != connection]

    # -- entities --------------------------------------------------------------------------

    def _all_entities(self) -> list[Entity]:
        found: list[Entity] = []
        for entity in self.entities.values():
            for each in [entity, *entity.subscriptions.values()]:
                found.append(each)
                if each.dead_letter is not None:
                    found.append(each.dead_letter)
        return found

    def _find(self, path: str | None) -> Entity | None:
        parts = (path or "").strip("/").lower().split("/")
        entity = self.entities.get(parts[0])
        rest = parts[1:]
        if entity is not None and len(rest) >= 2 and rest[0] == "subscriptions":
            entity = entity.subscriptions.get(rest[1])
            rest = rest[2:]
        if entity is not None and rest == ["$deadletterqueue"]:
            return entity.dead_letter
        return entity if not rest else None

    def _attach_entity(
        self, connection: Any, address: str, sending_to_client: bool
    ) -> tuple[Entity | None, Condition | None]:
        entity = self._find(address)
        if not self._is_authorized(connection, address):
            return None, Condition(
                "amqp:unauthorized-access",
                f"Unauthorized access. 'Listen'/'Send' claim(s) are required for '{address}'.",
            )
        if entity is None:
            return None, Condition(
                "amqp:not-found",
                f"The messaging entity 'sb://{self.hostname}/{address}' could not be found.",
            )
        if entity.is_topic and sending_to_client:
            return None, Condition(
                "amqp:not-allowed", f"Cannot receive from topic '{address}': use a subscription."
            )
        return entity, None

    # -- claims-based security -------------------------------------------------------------

    def _is_authorized(self, connection: Any, address: str) -> bool:
        now = time.time()
        wanted = f"sb://{self.hostname}/{address}".lower()
        for audience, expiry in self._authorized.get(connection, []):
            if expiry > now and wanted.startswith(audience.lower().rstrip("/")):
                return True
        return False

    def _verify_token(self, token: str) -> tuple[int, str, str, int]:
        prefix = "SharedAccessSignature "
        if not token.startswith(prefix):
            return 401, "InvalidSignature: the token is not a SharedAccessSignature.", "", 0
        fields = {k: v[0] for k, v in parse_qs(token[len(prefix) :]).items()}
        audience, signature = fields.get("sr", ""), fields.get("sig", "")
        expiry_text, key_name = fields.get("se", ""), fields.get("skn", "")
        if not (audience and signature and expiry_text.isdigit()):
            return 401, "InvalidSignature: the token is missing sr, sig or se.", "", 0
        if key_name != self.key_name:
            return 401, f"InvalidSignature: unknown policy '{key_name}'.", "", 0
        expected = base64.b64encode(
            hmac.new(
                self.key.encode(),
                f"{quote_plus(audience)}\n{expiry_text}".encode(),
                hashlib.sha256,
            ).digest()
        ).decode()
        if not hmac.compare_digest(expected, signature):
            return 401, "InvalidSignature: The token has an invalid signature.", "", 0
        if int(expiry_text) < time.time():
            return 401, "ExpiredToken: The token is expired.", "", 0
        return 202, "Accepted", audience, int(expiry_text)

    def _put_token(self, link: Any, _: Message, payload: bytes) -> None:
        request = Message()
        request.decode(payload)
        properties = _copy(dict(request.properties or {}))
        status, description = 400, "unsupported cbs operation"
        if properties.get("operation") == "put-token":
            body = request.body
            token = body.decode() if isinstance(body, bytes | memoryview) else str(body)
            status, description, audience, expiry = self._verify_token(token)
            name = str(properties.get("name", ""))
            if status < 300 and not name.lower().startswith(audience.lower().rstrip("/")):
                status, description = 401, "InvalidAudience: the token does not cover the entity."
            path = _entity_path(name)
            if status < 300 and path and self._find(path) is None:
                # As the service does: a token for an entity that does not exist is refused.
                status = 404
                description = f"The messaging entity '{name}' could not be found."
            if status < 300:
                self._authorized.setdefault(link.connection, []).append((name, expiry))
            else:
                self.auth_failures += 1
        self._reply(
            link,
            "$cbs",
            request,
            {"status-code": status, "status-description": description},
            None,
        )

    def _reply(
        self,
        link: Any,
        node: str,
        request: Message,
        properties: dict[str, Any],
        body: Any,
    ) -> None:
        reply = Message(body=body)
        reply.correlation_id = request.id
        reply.properties = properties  # type: ignore[assignment]  # proton types it None
        reply_to = request.reply_to
        session = link.session
        target = None
        candidate = session.connection.link_head(Endpoint.LOCAL_ACTIVE)
        while candidate is not None:
            if candidate.is_sender and candidate.session == session:
                source = _entity_path(candidate.remote_source.address)
                if (reply_to and candidate.remote_target.address == reply_to) or (
                    source.lower() == node.lower()
                ):
                    target = candidate
                    break
            candidate = candidate.next(Endpoint.LOCAL_ACTIVE)
        if target is None:
            return
        delivery = target.delivery(uuid.uuid4().bytes)
        target.send(reply.encode())
        target.advance()
        delivery.settle()

    # -- $management -----------------------------------------------------------------------

    def _management(self, link: Any, node: str, payload: bytes) -> None:
        request = Message()
        request.decode(payload)
        properties = _copy(dict(request.properties or {}))
        operation = str(properties.get("operation", ""))
        path = node[: -len("$management")].rstrip("/")
        entity = self._find(path)
        body = _copy(request.body) if isinstance(request.body, dict) else {}
        status, description, value = 200, "OK", None
        if entity is None:
            status, description = 404, f"The messaging entity '{path}' could not be found."
        else:
            handler = {
                VENDOR + "renew-lock": self._op_renew_lock,
                VENDOR + "peek-message": self._op_peek,
                VENDOR + "schedule-message": self._op_schedule,
                VENDOR + "cancel-scheduled-message": self._op_cancel_scheduled,
                VENDOR + "receive-by-sequence-number": self._op_receive_by_sequence,
                VENDOR + "update-disposition": self._op_update_disposition,
            }.get(operation)
            if handler is None:
                status, description = 501, f"operation {operation!r} is not supported"
            else:
                status, description, value = handler(entity, body)
        reply_properties: dict[str, Any] = {"statusCode": status, "statusDescription": description}
        if status == 410:
            reply_properties["errorCondition"] = symbol(LOCK_LOST)
        elif status == 404:
            reply_properties["errorCondition"] = symbol("com.microsoft:message-not-found")
        self._reply(link, node, request, reply_properties, value)

    def _lock_for(self, entity: Entity, token: Any) -> Lock | None:
        token = token if isinstance(token, uuid.UUID) else uuid.UUID(str(token))
        lock = entity.locks.get(token)
        if lock is None or lock.until_ms < _now_ms():
            return None
        return lock

    def _op_renew_lock(self, entity: Entity, body: dict[str, Any]) -> tuple[int, str, Any]:
        tokens = _array(body.get("lock-tokens"))
        expirations = []
        for token in tokens:
            lock = self._lock_for(entity, token)
            if lock is None:
                return 410, "The lock supplied is invalid: it expired or was settled.", None
            lock.until_ms = _now_ms() + int(entity.lock_duration * 1000)
            expirations.append(timestamp(lock.until_ms))
        return 200, "OK", {"expirations": Array(_undescribed(), Data.TIMESTAMP, *expirations)}

    def _op_peek(self, entity: Entity, body: dict[str, Any]) -> tuple[int, str, Any]:
        start = int(body.get("from-sequence-number", 0))
        count = int(body.get("message-count", 1))
        held = sorted(
            [
                *entity.available,
                *(lock.stored for lock in entity.locks.values()),
                *entity.deferred.values(),
                *entity.scheduled.values(),
            ]
        )
        chosen = [s for s in held if s.sequence_number >= start][:count]
        if not chosen:
            return 204, "No messages", None
        messages = []
        for stored in chosen:
            message = stored.message
            annotations = dict(message.annotations or {})
            annotations[symbol("x-opt-sequence-number")] = stored.sequence_number
            annotations[symbol("x-opt-enqueued-time")] = timestamp(stored.enqueued_ms)
            message.annotations = annotations
            message.delivery_count = stored.delivery_count
            messages.append({"message": message.encode()})
        return 200, "OK", {"messages": messages}

    def _op_schedule(self, entity: Entity, body: dict[str, Any]) -> tuple[int, str, Any]:
        numbers = []
        for item in body.get("messages", []):
            message = Message()
            message.decode(bytes(item["message"]))
            annotations = dict(message.annotations or {})
            when = annotations.get(symbol("x-opt-scheduled-enqueue-time"), 0)
            numbers.append(self._enqueue(entity, message, len(item["message"]), int(when)))
        return 200, "OK", {"sequence-numbers": Array(_undescribed(), Data.LONG, *numbers)}

    def _op_cancel_scheduled(self, entity: Entity, body: dict[str, Any]) -> tuple[int, str, Any]:
        for number in _array(body.get("sequence-numbers")):
            entity.scheduled.pop(int(number), None)
        return 200, "OK", None

    def _op_receive_by_sequence(self, entity: Entity, body: dict[str, Any]) -> tuple[int, str, Any]:
        messages = []
        for number in _array(body.get("sequence-numbers")):
            stored = entity.deferred.pop(int(number), None)
            if stored is None:
                return 404, f"Failed to retrieve deferred message {number}.", None
            token = uuid.uuid4()
            until = _now_ms() + int(entity.lock_duration * 1000)
            stored.delivery_count += 1
            entity.locks[token] = Lock(stored, token, until, None, entity)
            message = stored.message
            annotations = dict(message.annotations or {})
            annotations[symbol("x-opt-sequence-number")] = stored.sequence_number
            annotations[symbol("x-opt-locked-until")] = timestamp(until)
            message.annotations = annotations
            messages.append({"message": message.encode(), "lock-token": token})
        return 200, "OK", {"messages": messages}

    def _op_update_disposition(self, entity: Entity, body: dict[str, Any]) -> tuple[int, str, Any]:
        status = str(body.get("disposition-status", ""))
        for token in _array(body.get("lock-tokens")):
            lock = self._lock_for(entity, token)
            if lock is None:
                return 410, "The lock supplied is invalid: it expired or was settled.", None
            entity.locks.pop(lock.token, None)
            if status == "completed":
                continue
            if status == "abandoned":
                self._requeue(entity, lock.stored)
            elif status == "defered" or status == "deferred":
                entity.deferred[lock.stored.sequence_number] = lock.stored
            elif status == "suspended":
                self._dead_letter(
                    entity,
                    lock.stored,
                    body.get("deadletter-reason"),
                    body.get("deadletter-description"),
                )
        return 200, "OK", None


def _undescribed() -> Any:
    from proton import UNDESCRIBED

    return UNDESCRIBED


def _array(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, Array):
        return [_copy(v) for v in value.elements]
    if isinstance(value, list | tuple):
        return [_copy(v) for v in value]
    return [_copy(value)]


__all__ = ["BATCH_FORMAT", "KEY_NAME", "ServiceBusBroker", "ulong"]
