"""A bounded pool of JavaScript engines, shared by every event so that no event can take it all.

One engine runs one condition batch at a time, and a runaway condition holds its engine for
the whole script timeout. With one engine for everything, fifteen ``while(true){}`` messages
on one event kept every other event's messages waiting for a minute. The pool runs ``size``
engines (:class:`~conductor_events_handlers.scripting.ScriptEngine`, each a QuickJS runtime on
a thread of its own) and hands them out to message batches first come, first served, with one
rule: the batches of one event (the ``key``) may occupy at most ``size - 1`` engines at once.
Whatever one event's conditions do, an engine stays free for the others. (With ``size`` 1
there is nothing to keep free, and the one engine is shared as before.)

The bookkeeping is guarded by a lock, not by asyncio primitives: an engine is handed back by
its thread when the work finishes, which is not always the event loop's thread (a batch
whose caller was cancelled keeps running until the condition ends or times out, and its engine
stays taken until then).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from conductor_events_handlers.scripting import Runtime, ScriptEngine

T = TypeVar("T")


def default_size() -> int:
    """One engine per CPU core, and at least two, so one event cannot take them all."""
    return max(2, os.cpu_count() or 1)


@dataclass(eq=False, slots=True)
class _Waiter:
    key: str | None
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[ScriptEngine]


class EnginePool:
    """``size`` engines; one key's work may use ``size - 1`` of them at once (all when 1).

    Args:
        timeout: seconds one condition may run.
        memory_limit: bytes each engine may allocate.
        size: number of engines; ``None`` is :func:`default_size`.
    """

    def __init__(
        self, timeout: float = 4.0, memory_limit: int = 32 << 20, size: int | None = None
    ) -> None:
        self.size = size or default_size()
        if self.size < 1:
            raise ValueError(f"an engine pool needs at least one engine, not {self.size}")
        self.per_key = max(1, self.size - 1)
        self.engines = [ScriptEngine(timeout, memory_limit) for _ in range(self.size)]
        self._idle = list(reversed(self.engines))
        self._busy: Counter[str | None] = Counter()
        self._waiting: deque[_Waiter] = deque()
        self._lock = threading.Lock()

    def submit(self, work: Callable[[Runtime], T]) -> T:
        """Run ``work`` on the first engine and wait (blocking; for tools, not services)."""
        return self.engines[0].submit(work)

    async def run(self, work: Callable[[Runtime], T], key: str | None = None) -> T:
        """Run ``work`` on an engine as soon as one is free for ``key``."""
        engine = await self._acquire(key)
        try:
            future = engine.start(work)
        except BaseException:
            self._release(engine, key)
            raise
        future.add_done_callback(lambda _: self._release(engine, key))
        return await asyncio.wrap_future(future)

    def busy(self, key: str | None) -> int:
        """Engines ``key``'s work holds now."""
        with self._lock:
            return self._busy[key]

    async def _acquire(self, key: str | None) -> ScriptEngine:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._idle and self._busy[key] < self.per_key:
                self._busy[key] += 1
                return self._idle.pop()
            waiter = _Waiter(key, loop, loop.create_future())
            self._waiting.append(waiter)
        try:
            return await waiter.future
        except asyncio.CancelledError:
            future = waiter.future
            if future.done() and not future.cancelled():  # granted, but we are gone
                self._release(future.result(), key)
            raise

    def _release(self, engine: ScriptEngine, key: str | None) -> None:
        """Give ``engine`` back (from any thread) and hand free engines to waiters."""
        with self._lock:
            self._busy[key] -= 1
            if self._busy[key] <= 0:
                del self._busy[key]
            self._idle.append(engine)
            grants = self._dispatch()
        for waiter, granted in grants:
            try:
                waiter.loop.call_soon_threadsafe(self._hand_over, waiter, granted)
            except RuntimeError:  # the waiter's event loop is closed
                self._release(granted, waiter.key)

    def _dispatch(self) -> list[tuple[_Waiter, ScriptEngine]]:
        """Free engines to the oldest waiters whose key is under its limit (lock held)."""
        grants: list[tuple[_Waiter, ScriptEngine]] = []
        if not self._waiting:
            return grants
        kept: deque[_Waiter] = deque()
        while self._waiting:
            waiter = self._waiting.popleft()
            if waiter.future.done():  # cancelled while waiting
                continue
            if self._idle and self._busy[waiter.key] < self.per_key:
                self._busy[waiter.key] += 1
                grants.append((waiter, self._idle.pop()))
            else:
                kept.append(waiter)
        self._waiting = kept
        return grants

    def _hand_over(self, waiter: _Waiter, engine: ScriptEngine) -> None:
        if waiter.future.done():  # cancelled between the grant and now
            self._release(engine, waiter.key)
        else:
            waiter.future.set_result(engine)

    def close(self) -> None:
        """Stop every engine's thread (each waits for a running condition to finish)."""
        for engine in self.engines:
            engine.close()
