"""RabbitMQ for the tests: the shared broker on 127.0.0.1:5672, and a private node the
broker-restart tests start, restart and stop themselves (the shared one is never restarted).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
from conductor_events_amqp.settings import SECTION

from conductor_events.testing.servers import ServerStartError, free_port, wait_for_port

HOST = "127.0.0.1"
PORT = 5672
SERVER = Path(os.environ.get("RABBITMQ_SERVER", "/usr/lib/rabbitmq/bin/rabbitmq-server"))
"""The node's start script as the Debian and Ubuntu packages install it (their
``rabbitmq-server`` on the PATH switches to the rabbitmq user, who cannot write the tests'
temporary directories); ``RABBITMQ_SERVER`` names another."""
NODE_START_TIMEOUT = 60.0


def port_open(host: str = HOST, port: int = PORT) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def missing_broker(broker: Broker, environ: Mapping[str, str]) -> tuple[str, bool] | None:
    """``None`` when ``broker`` accepts connections; else why not, and whether that fails
    the tests (``CI=true``: CI machines run RabbitMQ as a service) rather than skipping them."""
    if port_open(broker.host, broker.port):
        return None
    why = (
        f"RabbitMQ is not listening on {broker.host}:{broker.port}: start it "
        "(e.g. `systemctl start rabbitmq-server`) to run the AMQP tests"
    )
    if environ.get("CI") == "true":
        return f"{why} (CI=true: a missing broker is a failure)", True
    return why, False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def unique(hint: str) -> str:
    return f"ce-amqp-{hint}-{uuid.uuid4().hex[:10]}"


@dataclass
class Broker:
    """One RabbitMQ node reachable as guest/guest."""

    host: str = HOST
    port: int = PORT

    def properties(self, **values: str) -> dict[str, str]:
        """The ``conductor.event-queues.amqp.*`` properties that reach this node."""
        prefix = SECTION
        found = {
            f"{prefix}.hosts": self.host,
            f"{prefix}.port": str(self.port),
            f"{prefix}.username": "guest",
            f"{prefix}.password": "guest",
            f"{prefix}.poll-time-duration": "50ms",
            f"{prefix}.network-recovery-interval-in-milli-secs": "300",
            f"{prefix}.duration": "200ms",
        }
        found.update({f"{prefix}.{key}": value for key, value in values.items()})
        return found

    async def connect(self) -> aio_pika.abc.AbstractConnection:
        return await aio_pika.connect(host=self.host, port=self.port, timeout=10)

    async def delete(self, queues: Iterable[str] = (), exchanges: Iterable[str] = ()) -> None:
        """Delete queues and exchanges, each on its own channel (a missing one closes it)."""
        connection = await self.connect()
        try:
            for name in queues:
                channel = await connection.channel()
                with contextlib.suppress(Exception):
                    await channel.queue_delete(name)
                with contextlib.suppress(Exception):
                    await channel.close()
            for name in exchanges:
                channel = await connection.channel()
                with contextlib.suppress(Exception):
                    await channel.exchange_delete(name)
                with contextlib.suppress(Exception):
                    await channel.close()
        finally:
            await connection.close()

    async def depth(self, queue: str) -> int:
        """Messages ready in ``queue`` (a passive declare, which creates nothing)."""
        connection = await self.connect()
        try:
            channel = await connection.channel()
            declared = await channel.declare_queue(queue, passive=True)
            count = declared.declaration_result.message_count
            return int(count or 0)
        finally:
            await connection.close()


@dataclass
class PrivateNode(Broker):
    """A RabbitMQ node of the tests' own, in a temporary directory, on free ports.

    Its data directory survives :meth:`restart`, so durable queues and persistent messages
    outlive the restart as on a real broker. Stopped by its process id (its process group).
    """

    workdir: Path = field(default_factory=Path)
    process: subprocess.Popen[bytes] | None = None
    node: str = ""

    @classmethod
    def create(cls, workdir: Path) -> PrivateNode:
        node = cls(port=free_port(), workdir=workdir)
        node.node = f"ce-test-{node.port}@localhost"
        return node

    def start(self) -> None:
        if not SERVER.exists():
            raise ServerStartError(f"{SERVER} is not installed")
        home = self.workdir / "home"
        for folder in ("mnesia", "log", "home"):
            (self.workdir / folder).mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "HOME": str(home),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": HOST,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(self.workdir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.workdir / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.workdir / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.workdir / "rabbitmq"),
        }
        out = self.workdir / "server.out"
        with out.open("ab") as log_file:
            self.process = subprocess.Popen(
                [str(SERVER)],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            wait_for_port(self.port, self.process, out, "rabbitmq-server", NODE_START_TIMEOUT)
        except ServerStartError:
            self.stop()
            raise

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        # The node's Erlang processes share the group: wait until every one has exited, or
        # the next start finds the node name still registered and its data directory locked.
        deadline = time.monotonic() + 30
        while _group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _group_alive(process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    async def restart_async(self) -> None:
        await asyncio.to_thread(self.restart)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
