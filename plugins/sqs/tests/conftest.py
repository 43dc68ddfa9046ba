"""Fixtures: a real SQS API (moto's server mode on 127.0.0.1), clients and queues.

One ``moto_server`` process serves the whole session. If it cannot start, every test that
needs it fails, naming the cause: a missing broker is a broken test set-up, not a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conductor_events_sqs import plugin as sqs_plugin
from conductor_events_sqs.settings import SqsSettings

from conductor_events.event_queues import EventQueues
from conductor_events.plugins import PluginHost
from conductor_events.testing.servers import (
    ServerStartError,
    free_port,
    stop_process,
    wait_for_port,
)

if TYPE_CHECKING:
    from conductor_events_sqs.client import SqsQueueClient
    from mypy_boto3_sqs.client import SQSClient

REGION = "us-east-1"
ACCOUNT = "123456789012"

# Test processes must never reach an instance-metadata address or a developer's real AWS
# account: no metadata lookups, no profile, no real keys.
ISOLATED_ENV = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
CLEARED_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)


@pytest.fixture(scope="session", autouse=True)
def isolated_aws_environment() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name in CLEARED_ENV:
            patch.delenv(name, raising=False)
        for name, value in ISOLATED_ENV.items():
            patch.setenv(name, value)
        yield


def _moto_command() -> str:
    beside = Path(sys.executable).with_name("moto_server")
    if beside.exists():
        return str(beside)
    found = shutil.which("moto_server")
    if found is None:
        pytest.fail(
            "moto_server not found: install the test extra (pip install -e 'plugins/sqs[test]')"
        )
    return found


@dataclass(frozen=True)
class Moto:
    """A running moto server."""

    endpoint: str
    port: int


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [_moto_command(), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        try:
            wait_for_port(port, process, log_path, "moto_server")
        except ServerStartError as exc:
            pytest.fail(str(exc))
        yield Moto(f"http://127.0.0.1:{port}", port)
    finally:
        stop_process(process)


@pytest.fixture(scope="session")
def moto_endpoint(moto: Moto) -> str:
    return moto.endpoint


@pytest.fixture(scope="session")
def raw(moto: Moto) -> SQSClient:
    """A plain boto3 SQS client for moto: how tests check what is really on the queues."""
    import boto3

    return boto3.client(
        "sqs",
        endpoint_url=moto.endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def unique(prefix: str = "q") -> str:
    """A queue name no other test uses (queues stay small: moto scans them per request)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def qname() -> str:
    return unique()


def settings_for(moto: Moto, **overrides: Any) -> SqsSettings:
    values: dict[str, Any] = {
        "enabled": True,
        "endpoint": moto.endpoint,
        "region": REGION,
        "access_key_id": "testing",
        "secret_access_key": "testing",
        "wait_time": "1s",
        "batch_size": 10,
        "poll_time_duration": "50ms",
    }
    values.update(overrides)
    return SqsSettings(**values)


@pytest.fixture
async def make_client(moto: Moto) -> AsyncIterator[Callable[..., SqsQueueClient]]:
    """Build SQS clients with settings overrides; each is closed after the test."""
    from conductor_events_sqs.client import SqsQueueClient

    made: list[SqsQueueClient] = []

    def make(**overrides: Any) -> SqsQueueClient:
        client = SqsQueueClient(settings_for(moto, **overrides))
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


@pytest.fixture
async def client(make_client: Callable[..., SqsQueueClient]) -> AsyncIterator[SqsQueueClient]:
    sqs = make_client()
    yield sqs
    await sqs.close()


@pytest.fixture
def plugins() -> PluginHost:
    """A plugin host with only the SQS plugin (never the environment's entry points)."""
    host = PluginHost(entry_points=[], environ={})
    host.add_plugin(sqs_plugin, "sqs", distribution="conductor-events-sqs", version="0.1.0")
    return host


@pytest.fixture
def properties(tmp_path: Path, moto: Moto) -> Callable[..., Path]:
    """Write a properties file enabling ``sqs`` against moto, plus extra lines."""

    def write(*extra: str) -> Path:
        path = tmp_path / f"app-{uuid.uuid4().hex[:6]}.properties"
        lines = [
            "conductor.event-queues.sqs.enabled=true",
            f"conductor.event-queues.sqs.endpoint={moto.endpoint}",
            f"conductor.event-queues.sqs.region={REGION}",
            "conductor.event-queues.sqs.access-key-id=testing",
            "conductor.event-queues.sqs.secret-access-key=testing",
            "conductor.event-queues.sqs.wait-time=1s",
            *extra,
        ]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    return write


@pytest.fixture
async def queues(
    plugins: PluginHost, properties: Callable[..., Path]
) -> AsyncIterator[EventQueues]:
    """EventQueues configured from a properties file, as an application would build it."""
    async with EventQueues.from_files([properties()], plugins=plugins, environ={}) as event_queues:
        yield event_queues


ReceiveAll = Callable[..., list[Any]]


@pytest.fixture
def receive_all(raw: SQSClient) -> ReceiveAll:
    """``receive_all(queue_name, expected, rounds=20)``: read and delete messages with plain
    boto3 until ``expected`` arrived or the rounds (1 s long polls) are used up."""

    def read(name: str, expected: int, *, rounds: int = 20) -> list[Any]:
        url = raw.get_queue_url(QueueName=name)["QueueUrl"]
        return _receive_all(raw, url, expected, rounds)

    return read


def _receive_all(raw: SQSClient, url: str, expected: int, rounds: int) -> list[Any]:
    got: list[Any] = []
    for _ in range(rounds):
        if len(got) >= expected:
            break
        response = raw.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        )
        for message in response.get("Messages", []):
            got.append(message)
            raw.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return got
