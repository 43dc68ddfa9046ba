"""A ``conductor-events`` command run by a test as a real subprocess (``serve``, ``worker``),
and waiting, without blocking the test's event loop, for what it logs and does.

The process logs JSON lines to a file, which the test reads as they come; it is killed at the
end of the test if it is still running."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar


async def eventually(
    check: Callable[[], Any], timeout: float = 30.0, what: str = "condition"
) -> None:
    """Poll ``check`` (sync or async) until it is truthy; the event loop keeps serving."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.02)


class CommandProcess:
    """One ``conductor-events COMMAND ARGS`` process at log level info, logging JSON lines to
    ``log``. Subclasses name the command."""

    command: ClassVar[str]

    def __init__(self, args: Sequence[str], cwd: Path, log: Path, env: dict[str, str]) -> None:
        self.log_path = log
        self._log = log.open("ab")
        self._offset = 0
        self.lines: list[dict[str, Any]] = []
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "conductor_events",
                "--log-level",
                "info",
                "--log-format",
                "json",
                self.command,
                *args,
            ],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )

    def read_log(self) -> list[dict[str, Any]]:
        """Every log line so far (a line that is not JSON is kept as its text)."""
        with self.log_path.open("rb") as file:
            file.seek(self._offset)
            data = file.read()
        end = data.rfind(b"\n") + 1
        self._offset += end
        for raw in data[:end].splitlines():
            try:
                self.lines.append(json.loads(raw))
            except ValueError:
                self.lines.append({"event": "(not json)", "text": raw.decode(errors="replace")})
        return self.lines

    def logged(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.read_log() if line.get("event") == event]

    async def wait_logged(self, event: str, timeout: float = 20.0) -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        def check() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.command} exited with {self.proc.returncode}: {self.text()}"
                )
            found[:] = self.logged(event)
            return bool(found)

        await eventually(check, timeout, f"log line {event}")
        return found[0]

    async def wait_exit(self, timeout: float = 30.0) -> int:
        await eventually(lambda: self.proc.poll() is not None, timeout, f"{self.command} to exit")
        self._log.close()
        return self.proc.returncode

    def signal(self, signum: signal.Signals) -> None:
        self.proc.send_signal(signum)

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    @property
    def port(self) -> int:
        """The port of the HTTP endpoint (``--http``), from the line that announced it."""
        lines = self.logged("serve.http.listening")
        assert lines, f"{self.command} logged no HTTP address"
        return int(lines[0]["port"])

    def get(self, path: str) -> tuple[int, str]:
        """A GET to the process's HTTP endpoint (blocking; call with asyncio.to_thread)."""
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()
