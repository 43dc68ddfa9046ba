"""Starting a test broker as a process of its own: a free port, waiting until it listens,
stopping it. Every plugin's tests start their broker this way (moto, tansu, a test broker of
their own), on 127.0.0.1 only."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

START_TIMEOUT = 20.0
"""Seconds a broker may take to listen on its port."""


class ServerStartError(RuntimeError):
    """A test broker did not start; the message says why, with the end of its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int,
    process: subprocess.Popen[bytes],
    log_path: Path,
    what: str,
    timeout: float = START_TIMEOUT,
) -> None:
    """Return once ``process`` listens on ``port``; raise :class:`ServerStartError` when it
    exits first (with the end of ``log_path``) or takes longer than ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise ServerStartError(
                f"{what} exited with {process.returncode} at start-up: "
                + log_path.read_text(errors="replace")[-2000:]
            )
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"{what} did not listen on 127.0.0.1:{port} within {timeout:g}s"
                ) from None
            time.sleep(0.02)


def stop_process(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """Terminate a process started by the tests, killing it if it outlives ``grace`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(grace)
