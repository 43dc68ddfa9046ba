"""The SQS queue client. This module imports boto3; only ``connect`` imports this module.

boto3 is synchronous: every call runs on a small thread pool of the client's own, and long
polls on daemon threads of their own (see :mod:`conductor_events_sqs.consume`), so the event
loop never blocks on the network. Queue URLs, dead-letter targets and policies are resolved
once per queue and cached.
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

import boto3
import structlog
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from conductor_events.backend import QueueClient, SubscribeOptions, Subscription
from conductor_events.errors import QueueError
from conductor_events.messages import Message, PublishFailure, PublishResult
from conductor_events_sqs.batching import Batcher, Outcome
from conductor_events_sqs.consume import DeadLetters, SqsSubscription
from conductor_events_sqs.locations import (
    QueueRef,
    check_queue_name,
    dead_letter_location,
    parse_location,
)
from conductor_events_sqs.policy import PolicyError, merge_policy
from conductor_events_sqs.settings import SQS_MAX_BATCH, SqsSettings
from conductor_events_sqs.signals import DaemonThreads
from conductor_events_sqs.wire import (
    MAX_PAYLOAD_BYTES,
    MAX_REQUEST_BYTES,
    InvalidMessage,
    build_entry,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

log = structlog.get_logger(__name__)

PREFIX = SqsSettings.section
REDRIVE_FACTOR = 2
"""The redrive policy of a queue this plugin creates moves a message after this many times
``max-receive-count`` receives: SQS counts every receive, also of messages a closing
subscriber gives back unhandled (which are no attempt), so SQS's move is the backstop for
consumers that crash, and the plugin's own move, with the reason, comes first."""

MAX_TRACKED_RETURNS = 100_000

SETTLE_LINGER = 0.02
"""Seconds an ack or visibility change may wait for the settlements of other deliveries in
flight on the same queue, to share a batch call. A lone settlement is sent at once."""
_MISSING_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
_QUEUE_EXISTS = {"QueueAlreadyExists", "QueueNameExists", "QueueDeletedRecently"}
_BAD_CREDENTIALS = {
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "ExpiredToken",
    "ExpiredTokenException",
    "MissingAuthenticationToken",
    "InvalidSecurity",
}
_DENIED = {"AccessDenied", "AccessDeniedException", "KMS.AccessDeniedException"}
_ENTRY_FAULTS = {
    "InvalidParameterValue",
    "MissingParameter",
    "InvalidMessageContents",
    "BatchRequestTooLong",
    "InvalidAttributeName",
    "InvalidAttributeValue",
    "InvalidParameterCombination",
}
"""Errors a single bad entry causes for its whole batch: worth resending entry by entry."""


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _short_code(code: str) -> str:
    return code.rsplit(".", 1)[-1] if code.startswith("AWS.") else code


@dataclass(eq=False)
class SqsQueue:
    """One queue as this client uses it: where it is and the batchers of its calls."""

    ref: QueueRef
    url: str
    sender: Batcher[dict[str, Any]] = field(init=False)
    deleter: Batcher[str] = field(init=False)
    visibility: Batcher[tuple[str, int]] = field(init=False)
    arn: str | None = None
    dead_letters: DeadLetters | None = None
    dead_letters_resolved: bool = False
    subscriptions: set[SqsSubscription] = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.ref.name

    def settlements_expected(self) -> int:
        """Deliveries received on this queue (handed out or about to be) whose settlement
        has not been submitted yet: acks and visibility changes likely to arrive soon, worth
        a short wait to share a batch call."""
        unsettled = sum(subscription.unsettled for subscription in self.subscriptions)
        return unsettled - self.deleter.outstanding - self.visibility.outstanding

    @property
    def fifo(self) -> bool:
        return self.ref.fifo


@dataclass
class _Clients:
    api: SQSClient
    poll: SQSClient
    region: str
    endpoint_url: str


@dataclass
class RequestCounts:
    """API calls made by one client, by operation name (for tests and benchmarks)."""

    by_operation: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.by_operation.values())


class SqsQueueClient(QueueClient):
    """All ``sqs:`` locations of one process. Connecting does no I/O; the first call does."""

    max_message_size = MAX_PAYLOAD_BYTES

    def __init__(self, settings: SqsSettings) -> None:
        self.settings = settings
        workers = max(8, 2 * settings.publish_concurrency)
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="conductor-events-sqs")
        self._pool_size = workers + 32
        self._clients: _Clients | None = None
        self._clients_lock = asyncio.Lock()
        self._queues: dict[str, SqsQueue] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.requests = RequestCounts()
        self._closed = False
        self._returned: OrderedDict[str, int] = OrderedDict()
        self._returned_lock = threading.Lock()
        self.poll_threads = DaemonThreads("conductor-events-sqs-receive")

    # -- the boto3 clients -----------------------------------------------------------------

    def _make_clients(self) -> _Clients:
        s = self.settings
        secret = s.secret_access_key.get_secret_value() if s.secret_access_key else None
        token = s.session_token.get_secret_value() if s.session_token else None
        try:
            session = boto3.session.Session(
                aws_access_key_id=s.access_key_id,
                aws_secret_access_key=secret,
                aws_session_token=token,
                region_name=s.region,
                profile_name=s.profile,
            )
        except ProfileNotFound:
            raise QueueError(
                f"AWS profile {s.profile!r} is not in the AWS config or credentials files "
                f"({PREFIX}.profile)"
            ) from None
        region = s.region or session.region_name or "us-east-1"
        read = s.read_timeout.total_seconds()

        def config(read_timeout: float) -> Config:
            return Config(
                connect_timeout=s.connect_timeout.total_seconds(),
                read_timeout=read_timeout,
                retries={"mode": "standard", "total_max_attempts": s.max_attempts},
                max_pool_connections=self._pool_size,
                user_agent_extra="conductor-events-sqs",
                parameter_validation=False,
            )

        endpoint = s.endpoint or None
        api = session.client("sqs", region_name=region, endpoint_url=endpoint, config=config(read))
        poll = session.client(
            "sqs", region_name=region, endpoint_url=endpoint, config=config(read + s.wait_seconds)
        )
        return _Clients(api, poll, region, api.meta.endpoint_url)

    async def clients(self) -> _Clients:
        """The boto3 clients, created on first use (in a thread: it reads files)."""
        if self._clients is None:
            if self._closed:
                raise QueueError("the SQS client is closed")
            async with self._clients_lock:
                if self._clients is None:
                    loop = asyncio.get_running_loop()
                    self._clients = await loop.run_in_executor(self._executor, self._make_clients)
        return self._clients

    @property
    def region(self) -> str:
        return self._clients.region if self._clients else (self.settings.region or "?")

    async def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """One SQS API call (boto3 method name) on the thread pool."""
        clients = await self.clients()
        method: Callable[..., Any] = getattr(clients.api, operation)
        self.requests.by_operation[operation] += 1
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._executor, functools.partial(method, **kwargs))
        return cast("dict[str, Any]", result)

    def where(self) -> str:
        """Region and endpoint, for error messages."""
        clients = self._clients
        if clients is None:
            return f"region {self.region}"
        if self.settings.endpoint:
            return f"region {clients.region}, endpoint {clients.endpoint_url}"
        return f"region {clients.region}"

    def describe(self, exc: Exception, *, queue: str | None = None) -> str:
        """A one-line explanation of a boto3 error (never containing a secret)."""
        where = self.where()
        endpoint = self._clients.endpoint_url if self._clients else self.settings.endpoint
        about = f" for queue {queue!r}" if queue else ""
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return (
                f"no usable AWS credentials for SQS ({where}): set AWS_ACCESS_KEY_ID and "
                f"AWS_SECRET_ACCESS_KEY, AWS_PROFILE or {PREFIX}.profile, or run with an "
                "instance or container role"
            )
        if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
            return (
                f"cannot connect to the SQS endpoint {endpoint} (region {self.region}; "
                f"{PREFIX}.endpoint, {PREFIX}.connect-timeout): {exc}"
            )
        if isinstance(exc, ReadTimeoutError | ConnectionClosedError):
            return (
                f"the SQS endpoint {endpoint} did not answer{about} within "
                f"{self.settings.read_timeout.total_seconds():g}s (region {self.region}; "
                f"{PREFIX}.read-timeout)"
            )
        if isinstance(exc, ClientError):
            code = _code(exc)
            message = exc.response.get("Error", {}).get("Message", "") or str(exc)
            if code in _MISSING_QUEUE:
                return f"SQS queue {queue or '?'!r} does not exist ({where})"
            if _short_code(code) in _BAD_CREDENTIALS:
                return f"SQS rejected the AWS credentials ({where}): {code}: {message}"
            if _short_code(code) in _DENIED:
                return f"SQS denied access{about} ({where}): {message}"
            return f"SQS error{about} ({where}): {code}: {message}"
        if isinstance(exc, BotoCoreError):
            return f"SQS call{about} failed ({where}): {exc}"
        return f"SQS call{about} failed ({where}): {type(exc).__name__}: {exc}"

    async def checked_call(self, operation: str, *, queue: str | None, **kwargs: Any) -> Any:
        """:meth:`call`, with boto3's errors turned into a :class:`QueueError` that says why."""
        try:
            return await self.call(operation, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise QueueError(self.describe(exc, queue=queue)) from exc

    # -- locations and queues --------------------------------------------------------------

    def parse_location(self, location: str) -> str:
        parse_location(location)
        return location.strip()

    async def queue(self, location: str, *, dead_letters_of: QueueRef | None = None) -> SqsQueue:
        """The queue at ``location``, its URL resolved once (created if allowed) and cached."""
        queue = self._queues.get(location)
        if queue is not None:
            return queue
        lock = self._locks.setdefault(location, asyncio.Lock())
        async with lock:
            queue = self._queues.get(location)
            if queue is not None:
                return queue
            ref = parse_location(location)
            url = ref.url or await self._resolve_url(ref, dead_letters_of)
            queue = self._new_queue(ref, url)
            if self.settings.authorized_accounts:
                await self._apply_policy(queue)
            self._queues[location] = queue
            return queue

    def _new_queue(self, ref: QueueRef, url: str) -> SqsQueue:
        concurrency = self.settings.publish_concurrency
        queue = SqsQueue(ref, url)
        queue.sender = Batcher(
            functools.partial(self._send_entries, queue),
            max_entries=SQS_MAX_BATCH,
            max_bytes=MAX_REQUEST_BYTES,
            concurrency=concurrency,
        )
        queue.deleter = Batcher(
            functools.partial(self._delete_entries, queue),
            max_entries=SQS_MAX_BATCH,
            concurrency=concurrency,
            expected=queue.settlements_expected,
            linger=SETTLE_LINGER,
        )
        queue.visibility = Batcher(
            functools.partial(self._visibility_entries, queue),
            max_entries=SQS_MAX_BATCH,
            concurrency=concurrency,
            expected=queue.settlements_expected,
            linger=SETTLE_LINGER,
        )
        return queue

    async def _resolve_url(self, ref: QueueRef, dead_letters_of: QueueRef | None) -> str:
        try:
            response = await self.call("get_queue_url", QueueName=ref.name)
            return str(response["QueueUrl"])
        except ClientError as exc:
            if _code(exc) not in _MISSING_QUEUE:
                raise QueueError(self.describe(exc, queue=ref.name)) from exc
        except BotoCoreError as exc:
            raise QueueError(self.describe(exc, queue=ref.name)) from exc
        if not self.settings.create_queues:
            role = f"dead-letter queue of {dead_letters_of.name!r} " if dead_letters_of else ""
            raise QueueError(
                f"SQS {role}queue {ref.name!r} does not exist ({self.where()}); create it, or "
                f"set {PREFIX}.create-queues=true to let conductor-events create it"
            )
        return await self._create(ref, dead_letters_of)

    async def _create(self, ref: QueueRef, dead_letters_of: QueueRef | None) -> str:
        attributes: dict[str, str] = {}
        if ref.fifo:
            attributes["FifoQueue"] = "true"
        template = self.settings.dead_letter_queue
        if dead_letters_of is None and template and not self.is_dead_letter_name(ref):
            target = await self.queue(dead_letter_location(template, ref), dead_letters_of=ref)
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": await self.arn(target),
                    "maxReceiveCount": str(REDRIVE_FACTOR * self.settings.max_receive_count),
                }
            )
        try:
            response = await self.call("create_queue", QueueName=ref.name, Attributes=attributes)
        except ClientError as exc:
            if _short_code(_code(exc)) not in _QUEUE_EXISTS:
                raise QueueError(self.describe(exc, queue=ref.name)) from exc
            response = await self.checked_call("get_queue_url", queue=ref.name, QueueName=ref.name)
        except BotoCoreError as exc:
            raise QueueError(self.describe(exc, queue=ref.name)) from exc
        log.info("sqs.queue.created", queue=ref.name, attributes=sorted(attributes))
        return str(response["QueueUrl"])

    def is_dead_letter_name(self, ref: QueueRef) -> bool:
        """Whether ``ref`` is a dead-letter queue by the ``dead-letter-queue`` setting's pattern
        (such a queue gets no dead-letter queue of its own)."""
        template = self.settings.dead_letter_queue
        if not template:
            return False
        pattern = template.rsplit("/", 1)[-1].removesuffix(".fifo")
        name = ref.base_name
        if "{queue}" not in pattern:
            return name == pattern
        head, tail = pattern.split("{queue}", 1)
        return len(name) > len(head) + len(tail) and name.startswith(head) and name.endswith(tail)

    async def arn(self, queue: SqsQueue) -> str:
        if queue.arn is None:
            response = await self.checked_call(
                "get_queue_attributes",
                queue=queue.name,
                QueueUrl=queue.url,
                AttributeNames=["QueueArn"],
            )
            queue.arn = str(response["Attributes"]["QueueArn"])
        return queue.arn

    async def dead_letters(self, queue: SqsQueue) -> DeadLetters | None:
        """Where this queue's dead letters go: its own redrive target (native), else the
        ``dead-letter-queue`` setting's queue, else nowhere; after ``max-receive-count``
        deliveries, or the redrive policy's ``maxReceiveCount`` when lower. Resolved once."""
        if queue.dead_letters_resolved:
            return queue.dead_letters
        response = await self.checked_call(
            "get_queue_attributes",
            queue=queue.name,
            QueueUrl=queue.url,
            AttributeNames=["RedrivePolicy", "QueueArn"],
        )
        attributes: dict[str, str] = response.get("Attributes", {})
        queue.arn = attributes.get("QueueArn", queue.arn)
        redrive = attributes.get("RedrivePolicy")
        result: DeadLetters | None = None
        if redrive:
            result = await self._native_dead_letters(queue, redrive)
        elif self.settings.dead_letter_queue and not self.is_dead_letter_name(queue.ref):
            location = dead_letter_location(self.settings.dead_letter_queue, queue.ref)
            if location in (queue.name, queue.url):
                raise QueueError(
                    f"{PREFIX}.dead-letter-queue makes queue {queue.name!r} its own dead-letter "
                    "queue; use a pattern such as {queue}_dlq"
                )
            target = await self.queue(location, dead_letters_of=queue.ref)
            result = DeadLetters(target, self.settings.max_receive_count, native=False)
        queue.dead_letters, queue.dead_letters_resolved = result, True
        return result

    async def _native_dead_letters(self, queue: SqsQueue, redrive: str) -> DeadLetters:
        try:
            policy = json.loads(redrive)
            arn = str(policy["deadLetterTargetArn"])
            limit = int(policy["maxReceiveCount"])
            _, _, _, _, account, name = arn.split(":", 5)
        except (ValueError, KeyError, TypeError) as exc:
            raise QueueError(
                f"SQS queue {queue.name!r} has a redrive policy this plugin cannot read "
                f"({redrive!r}): {exc}"
            ) from None
        if check_queue_name(name):
            raise QueueError(f"SQS queue {queue.name!r}: bad dead-letter target ARN {arn!r}")
        response = await self.checked_call(
            "get_queue_url", queue=name, QueueName=name, QueueOwnerAWSAccountId=account
        )
        url = str(response["QueueUrl"])
        target = self._queues.get(url)
        if target is None:
            target = self._new_queue(QueueRef(name, url), url)
            target.arn = arn
            target.dead_letters_resolved = True
            self._queues[url] = target
        return DeadLetters(target, min(limit, self.settings.max_receive_count), native=True)

    async def _apply_policy(self, queue: SqsQueue) -> None:
        """Merge the authorized-accounts statement into the queue's policy. A failure is
        logged, not raised: publishing does not depend on it."""
        accounts = self.settings.authorized_accounts
        try:
            response = await self.call(
                "get_queue_attributes", QueueUrl=queue.url, AttributeNames=["Policy", "QueueArn"]
            )
            attributes = response.get("Attributes", {})
            queue.arn = str(attributes["QueueArn"])
            document = merge_policy(attributes.get("Policy"), accounts, queue.arn)
            if document is not None:
                await self.call(
                    "set_queue_attributes", QueueUrl=queue.url, Attributes={"Policy": document}
                )
                log.info("sqs.policy.updated", queue=queue.name, accounts=accounts)
        except PolicyError as exc:
            log.warning(
                "sqs.policy.not_merged",
                queue=queue.name,
                reason=f"the queue's existing policy was left as it is: {exc}",
            )
        except (ClientError, BotoCoreError) as exc:
            log.warning(
                "sqs.policy.failed",
                queue=queue.name,
                setting=f"{PREFIX}.authorized-accounts",
                error=self.describe(exc, queue=queue.name),
            )

    # -- publish ---------------------------------------------------------------------------

    async def publish(self, location: str, messages: Sequence[Message]) -> PublishResult:
        queue = await self.queue(location)
        result = PublishResult()
        sent: list[tuple[str, asyncio.Future[Outcome | None]]] = []
        group = self.settings.fifo_message_group_id
        for message in messages:
            try:
                entry = build_entry(message, fifo=queue.fifo, default_group=group)
            except InvalidMessage as exc:
                result.failed.append(PublishFailure(message.id, str(exc)))
                continue
            sent.append((message.id, queue.sender.submit(entry.fields, entry.size)))
        if not sent:
            return result
        outcomes = await asyncio.gather(*(future for _, future in sent))
        fatal: list[Outcome] = []
        for (message_id, _), outcome in zip(sent, outcomes, strict=True):
            if outcome is None:
                result.published.append(message_id)
            else:
                result.failed.append(PublishFailure(message_id, outcome.reason))
                if outcome.fatal:
                    fatal.append(outcome)
        if len(fatal) == len(result.failed) == len(messages):
            raise QueueError(fatal[0].reason)
        if result.failed:
            log.warning(
                "sqs.publish.failed",
                queue=queue.name,
                failed=len(result.failed),
                published=len(result.published),
                reason=result.failed[0].reason,
            )
        return result

    async def _send_entries(
        self, queue: SqsQueue, entries: Sequence[dict[str, Any]]
    ) -> list[Outcome | None]:
        request = [{**entry, "Id": str(i)} for i, entry in enumerate(entries)]
        try:
            response = await self.call("send_message_batch", QueueUrl=queue.url, Entries=request)
        except ClientError as exc:
            if len(entries) > 1 and _short_code(_code(exc)) in _ENTRY_FAULTS:
                # one bad entry fails its whole batch: resend one by one to learn which
                singles = await asyncio.gather(*(self._send_entries(queue, [e]) for e in entries))
                return [outcome[0] for outcome in singles]
            fatal = _short_code(_code(exc)) not in _ENTRY_FAULTS
            return [Outcome(self.describe(exc, queue=queue.name), fatal)] * len(entries)
        except BotoCoreError as exc:
            return [Outcome(self.describe(exc, queue=queue.name), fatal=True)] * len(entries)
        return _outcomes(response, len(entries), "SQS did not accept the message")

    async def delete_now(self, queue: SqsQueue, handles: Sequence[str]) -> list[Outcome | None]:
        """Delete received messages by receipt handle, in DeleteMessageBatch calls of 10 made
        at once; one outcome per handle. For a batch the caller already holds (``ack_many``):
        the delete batcher's coalescing of lone acks would only add work."""
        chunks = [handles[i : i + SQS_MAX_BATCH] for i in range(0, len(handles), SQS_MAX_BATCH)]
        if len(chunks) == 1:
            return await self._delete_entries(queue, chunks[0])
        results = await asyncio.gather(*(self._delete_entries(queue, c) for c in chunks))
        return [outcome for result in results for outcome in result]

    async def _delete_entries(
        self, queue: SqsQueue, handles: Sequence[str]
    ) -> list[Outcome | None]:
        request = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles)]
        try:
            response = await self.call("delete_message_batch", QueueUrl=queue.url, Entries=request)
        except (ClientError, BotoCoreError) as exc:
            return [Outcome(self.describe(exc, queue=queue.name), fatal=True)] * len(handles)
        return _outcomes(response, len(handles), "SQS did not delete the message")

    async def _visibility_entries(
        self, queue: SqsQueue, entries: Sequence[tuple[str, int]]
    ) -> list[Outcome | None]:
        request = [
            {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": seconds}
            for i, (handle, seconds) in enumerate(entries)
        ]
        try:
            response = await self.call(
                "change_message_visibility_batch", QueueUrl=queue.url, Entries=request
            )
        except (ClientError, BotoCoreError) as exc:
            return [Outcome(self.describe(exc, queue=queue.name), fatal=True)] * len(entries)
        return _outcomes(response, len(entries), "SQS did not change the message's visibility")

    # -- consume ---------------------------------------------------------------------------

    async def subscribe(self, location: str, options: SubscribeOptions) -> Subscription:
        queue = await self.queue(location)
        dead_letters = await self.dead_letters(queue)
        limit = min(options.max_in_flight, self.settings.max_in_flight)
        return SqsSubscription(self, queue, dead_letters, replace(options, max_in_flight=limit))

    def release_now(self, queue_url: str, received: Sequence[dict[str, Any]]) -> None:
        """Make received messages visible again at once; blocking, for receive threads that
        got messages after their subscription closed. Failures are logged: SQS's visibility
        timeout returns the messages anyway."""
        clients = self._clients
        if clients is None:
            return
        self.note_returned(str(raw["MessageId"]) for raw in received)
        for start in range(0, len(received), SQS_MAX_BATCH):
            chunk = received[start : start + SQS_MAX_BATCH]
            try:
                clients.api.change_message_visibility_batch(
                    QueueUrl=queue_url,
                    Entries=[
                        {
                            "Id": str(i),
                            "ReceiptHandle": raw["ReceiptHandle"],
                            "VisibilityTimeout": 0,
                        }
                        for i, raw in enumerate(chunk)
                    ],
                )
            except Exception as exc:
                log.warning("sqs.release.failed", queue_url=queue_url, error=str(exc))

    # -- attempts --------------------------------------------------------------------------

    def note_returned(self, sqs_message_ids: Iterable[str]) -> None:
        """Record receives given back unhandled (prefetched, or held at close): SQS's
        ApproximateReceiveCount counts them, ``Delivery.attempt`` does not."""
        with self._returned_lock:
            for message_id in sqs_message_ids:
                self._returned[message_id] = self._returned.get(message_id, 0) + 1
                self._returned.move_to_end(message_id)
            while len(self._returned) > MAX_TRACKED_RETURNS:
                self._returned.popitem(last=False)

    def returned(self, sqs_message_id: str) -> int:
        with self._returned_lock:
            return self._returned.get(sqs_message_id, 0)

    def forget_returned(self, sqs_message_ids: Iterable[str]) -> None:
        """Drop the count of messages that were settled: they are not received again."""
        with self._returned_lock:
            for message_id in sqs_message_ids:
                self._returned.pop(message_id, None)

    def poll_client(self) -> SQSClient:
        assert self._clients is not None, "clients() first"
        return self._clients.poll

    # -- helpers ---------------------------------------------------------------------------

    async def depth(self, location: str) -> int:
        """Messages in a queue, visible or in flight (approximate, as SQS counts)."""
        queue = await self.queue(location)
        response = await self.checked_call(
            "get_queue_attributes",
            queue=queue.name,
            QueueUrl=queue.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
        attributes = response.get("Attributes", {})
        return int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
            attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
        )

    def listener_queues(self) -> list[str]:
        """Conductor's default listener queues for this configuration."""
        return self.settings.listener_queues()

    async def close(self) -> None:
        self._closed = True
        for queue in list(self._queues.values()):
            for batcher in (queue.sender, queue.deleter, queue.visibility):
                await batcher.aclose()
        self._executor.shutdown(wait=False, cancel_futures=True)
        clients, self._clients = self._clients, None
        if clients is not None:
            clients.api.close()
            clients.poll.close()


def _outcomes(response: dict[str, Any], count: int, what: str) -> list[Outcome | None]:
    failed = {entry["Id"]: entry for entry in response.get("Failed", [])}
    outcomes: list[Outcome | None] = []
    for i in range(count):
        entry = failed.get(str(i))
        if entry is None:
            outcomes.append(None)
        else:
            code, text = entry.get("Code", "?"), entry.get("Message", "")
            outcomes.append(Outcome(f"{what}: {code}{': ' + text if text else ''}"))
    return outcomes
