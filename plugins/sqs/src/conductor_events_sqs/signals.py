"""Two small concurrency helpers the hot paths use instead of heavier stdlib idioms.

:class:`Signal` wakes waiters without the task that ``asyncio.wait_for(event.wait(), t)``
creates on every wait; :class:`DaemonThreads` runs blocking calls (long polls) on reused daemon
threads, so a poll that outlives its subscription never holds up the process's exit, and no
thread is started per call.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)

IDLE_THREAD_SECONDS = 60.0


def _expire(future: asyncio.Future[bool]) -> None:
    if not future.done():
        future.set_result(False)


class Signal:
    """A wake-up for coroutines of one event loop.

    ``await wait(timeout)`` returns True when :meth:`fire` was called meanwhile, False on
    timeout. A fire with nobody waiting is not remembered: check the condition, then wait,
    with no ``await`` in between.
    """

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[bool]] = []

    def fire(self) -> None:
        waiters, self._waiters = self._waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(True)

    async def wait(self, timeout: float | None = None) -> bool:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(future)
        handle = None if timeout is None else loop.call_later(max(0.0, timeout), _expire, future)
        try:
            return await future
        finally:
            if handle is not None:
                handle.cancel()
            if future in self._waiters:  # timed out or cancelled: not fired
                self._waiters.remove(future)


class DaemonThreads:
    """Runs blocking jobs on daemon threads, reusing idle ones; a thread idle for a minute
    exits."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._idle = 0
        self._lock = threading.Lock()

    def run(self, job: Callable[[], None]) -> None:
        with self._lock:
            start = self._idle == 0
            if not start:
                self._idle -= 1
        self._jobs.put(job)
        if start:
            threading.Thread(target=self._work, name=self._name, daemon=True).start()

    def _work(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=IDLE_THREAD_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0:
                        self._idle -= 1
                        return
                continue
            try:
                job()
            except BaseException as exc:  # a job reports its own errors; never lose the thread
                log.warning("sqs.thread.job_failed", error=f"{type(exc).__name__}: {exc}")
            with self._lock:
                self._idle += 1
