"""A ``nats-server`` with JetStream started as a process of its own, for tests and benchmarks:
on 127.0.0.1, a free port and a store directory of its own, restartable on the same port and
store (what a broker-restart test needs). Imports no nats-py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from conductor_events.testing.servers import free_port, stop_process, wait_for_port

FALLBACK_PATHS = ("/usr/sbin/nats-server", "/usr/local/bin/nats-server", "/usr/bin/nats-server")


def find_nats_server() -> str | None:
    """The ``nats-server`` binary: ``NATS_SERVER_BIN``, else on ``PATH``, else a usual place."""
    configured = os.environ.get("NATS_SERVER_BIN")
    if configured:
        return configured
    found = shutil.which("nats-server")
    if found:
        return found
    return next((path for path in FALLBACK_PATHS if Path(path).is_file()), None)


class NatsServer:
    """One ``nats-server -js`` process; ``start``, ``stop`` and ``restart`` keep its port and
    store, so streams and consumers survive a restart."""

    def __init__(
        self,
        store: Path,
        *,
        binary: str | None = None,
        port: int | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        found = binary or find_nats_server()
        if found is None:
            raise FileNotFoundError(
                "nats-server not found: install it (https://nats.io) or set NATS_SERVER_BIN"
            )
        self.binary = found
        self.store = store
        self.port = port or free_port()
        self.extra_args = extra_args
        self.log_path = store.parent / f"{store.name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        self.store.mkdir(parents=True, exist_ok=True)
        command = [
            self.binary,
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-sd",
            str(self.store),
            *self.extra_args,
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        wait_for_port(self.port, self._process, self.log_path, "nats-server")

    def stop(self) -> None:
        """Stop the process (SIGTERM, so JetStream writes its store out), by its own PID."""
        process, self._process = self._process, None
        if process is not None:
            stop_process(process)

    def restart(self) -> None:
        self.stop()
        self.start()
