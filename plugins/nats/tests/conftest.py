"""Fixtures: the NATS server with JetStream at 127.0.0.1:4222, and servers a test starts itself.

The shared server runs as a system service on the machines that develop and test this project
(CI included). Without it the tests are skipped with the reason, except with ``CI=true``,
where they fail: a CI run that checked nothing must not pass. Every test works on subjects of
its own and deletes the streams (and so their consumers) it created.

Tests that restart a broker or need credentials start their own ``nats-server`` on a free port
with a temporary store (:class:`conductor_events_nats.testing.NatsServer`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conductor_events_nats import plugin as nats_plugin
from conductor_events_nats.settings import JetStreamSettings, NatsSettings, stream_name_for
from conductor_events_nats.testing import NatsServer, find_nats_server

from conductor_events.plugins import PluginHost
from conductor_events.testing.servers import ServerStartError

if TYPE_CHECKING:
    from conductor_events_nats.core import NatsQueueClient
    from conductor_events_nats.jetstream import JetStreamQueueClient

pytest_plugins = ["conductor_events.testing.pytest_plugin"]

SHARED_HOST = "127.0.0.1"
SHARED_PORT = 4222
SHARED_URL = f"nats://{SHARED_HOST}:{SHARED_PORT}"
RESTART_CLASS = "TestJetStreamRestartConformance"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> None:
    """Skip, or fail under ``CI=true``, because a broker the tests need is missing."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing broker fails the run)", pytrace=False)
    pytest.skip(reason)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The restart class runs only the reconnect scenario; its other tests, the same as the
    main JetStream class's, are deselected rather than run twice."""
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        cls = getattr(item, "cls", None)
        restart_only = cls is not None and cls.__name__ == RESTART_CLASS
        (drop if restart_only and item.name != "test_reconnect" else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def nats_url() -> str:
    """The shared server's URL, once it answers on its port."""
    try:
        socket.create_connection((SHARED_HOST, SHARED_PORT), timeout=2).close()
    except OSError as exc:
        unavailable(
            f"no NATS server at {SHARED_HOST}:{SHARED_PORT} ({exc}): start one with "
            f"`nats-server -js -a {SHARED_HOST} -p {SHARED_PORT}`"
        )
    return SHARED_URL


def unique(prefix: str = "t") -> str:
    """A subject no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def subject() -> str:
    return unique()


@pytest.fixture
async def raw(nats_url: str) -> AsyncIterator[Any]:
    """A plain nats-py connection to the shared server: how tests look at what is really
    there, and clean up."""
    import nats

    client = await nats.connect(nats_url)
    yield client
    await client.close()


@pytest.fixture
async def drop_streams(raw: Any) -> AsyncIterator[Callable[[str], None]]:
    """``drop_streams(subject)``: delete, after the test, the streams the plugin creates for
    ``subject`` and its dead-letter subject (deleting a stream deletes its consumers)."""
    from nats.js.errors import NotFoundError

    subjects: list[str] = []
    yield subjects.append
    manager = raw.jsm()
    for subject in subjects:
        for name in (stream_name_for(subject), stream_name_for(f"{subject}.dlq")):
            with contextlib.suppress(NotFoundError):
                await manager.delete_stream(name)


def jsm_settings(url: str, **overrides: Any) -> JetStreamSettings:
    values: dict[str, Any] = {
        "enabled": True,
        "url": url,
        "ack_wait": "2s",
        "max_deliver": 3,
        "poll_time_duration": "50ms",
        "connect_timeout": "3s",
    }
    values.update(overrides)
    return JetStreamSettings(**values)


def nats_settings(url: str, **overrides: Any) -> NatsSettings:
    values: dict[str, Any] = {"enabled": True, "url": url, "connect_timeout": "3s"}
    values.update(overrides)
    return NatsSettings(**values)


@pytest.fixture
def plugins() -> PluginHost:
    """A plugin host with only the NATS plugin (never the environment's entry points)."""
    host = PluginHost(entry_points=[], environ={})
    host.add_plugin(nats_plugin, "nats", distribution="conductor-events-nats", version="0.1.0")
    return host


def own_server(store: Path, *extra_args: str) -> NatsServer:
    """Start a ``nats-server`` of the test's own; skip (fail under CI) when there is none."""
    if find_nats_server() is None:
        unavailable("nats-server not found on PATH or in /usr/sbin (or NATS_SERVER_BIN)")
    server = NatsServer(store, extra_args=extra_args)
    try:
        server.start()
    except ServerStartError as exc:
        pytest.fail(f"nats-server did not start: {exc}", pytrace=False)
    return server


@pytest.fixture
def nats_server_binary() -> str:
    """The ``nats-server`` binary; skip (fail under CI) when there is none."""
    found = find_nats_server()
    if found is None:
        unavailable("nats-server not found on PATH or in /usr/sbin (or NATS_SERVER_BIN)")
    assert found is not None
    return found


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., NatsServer]]:
    """``make_server(*args)``: JetStream servers of this test's own (``args`` added to the
    command line), each stopped afterwards."""
    made: list[NatsServer] = []

    def make(*extra_args: str) -> NatsServer:
        server = own_server(tmp_path / f"store-{len(made)}", *extra_args)
        made.append(server)
        return server

    try:
        yield make
    finally:
        for server in made:
            server.stop()


@pytest.fixture(scope="session")
def restartable_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A JetStream server on file storage for the broker-restart scenario."""
    server = own_server(tmp_path_factory.mktemp("nats") / "store")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def make_jsm(nats_url: str) -> AsyncIterator[Callable[..., JetStreamQueueClient]]:
    """``make_jsm(url=None, **settings)``: JetStream clients of the plugin (the shared server
    unless ``url`` says otherwise), each closed after the test."""
    from conductor_events_nats.jetstream import JetStreamQueueClient

    made: list[JetStreamQueueClient] = []

    def make(url: str | None = None, **overrides: Any) -> JetStreamQueueClient:
        client = JetStreamQueueClient(jsm_settings(url or nats_url, **overrides))
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


@pytest.fixture
async def make_nats(nats_url: str) -> AsyncIterator[Callable[..., NatsQueueClient]]:
    """``make_nats(url=None, **settings)``: core NATS clients of the plugin, closed after."""
    from conductor_events_nats.core import NatsQueueClient

    made: list[NatsQueueClient] = []

    def make(url: str | None = None, **overrides: Any) -> NatsQueueClient:
        client = NatsQueueClient(nats_settings(url or nats_url, **overrides))
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()
