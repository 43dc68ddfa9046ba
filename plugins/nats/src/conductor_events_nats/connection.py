"""One NATS connection per client, opened on first use within ``connect-timeout``.

nats-py retries the initial connect for as long as reconnects are allowed (for ever by
default), so the attempt is bounded here and the last reason the server or the network gave
is reported: an unreachable server or refused credentials fail the first publish or subscribe
in a few seconds, with one line naming the server (never the credentials) and the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import Any

import structlog
from nats.aio.client import Client
from nats.errors import Error as NatsError

from conductor_events.errors import QueueError
from conductor_events_nats.settings import ConnectionSettings

log = structlog.get_logger(__name__)

FLUSH_TIMEOUT = 2.0
"""Seconds a close waits for the server to confirm what the client still had to send."""


def describe(exc: BaseException) -> str:
    """An exception as one line: nats-py's messages, else the exception's name."""
    text = " ".join(str(exc).split())
    name = type(exc).__name__
    if not text or text == name:
        return name
    return text.removeprefix("nats: ").strip("'")


class Connection:
    """A lazily opened nats-py client shared by everything one queue client does."""

    def __init__(self, settings: ConnectionSettings, queue_type: str) -> None:
        self.settings = settings
        self.queue_type = queue_type
        self._client: Client | None = None
        self._lock = asyncio.Lock()
        self._last_error: BaseException | None = None
        self._refusal: BaseException | None = None
        self._closing = False
        self._next_flush: asyncio.Future[None] | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    @property
    def timeout(self) -> float:
        return self.settings.connect_timeout.total_seconds()

    async def client(self) -> Client:
        """The connected client; raises :class:`QueueError` when it cannot connect in time."""
        client = self._client
        if client is not None and not client.is_closed:
            return client
        async with self._lock:
            if self._client is None or self._client.is_closed:
                self._client = await self._connect()
            return self._client

    async def _connect(self) -> Client:
        settings = self.settings
        client = Client()
        options: dict[str, Any] = {
            "servers": settings.servers,
            "connect_timeout": max(1, round(self.timeout)),
            "reconnect_time_wait": settings.reconnect_wait.total_seconds(),
            "max_reconnect_attempts": settings.max_reconnects,
            "error_cb": self._on_error,
            "disconnected_cb": self._on_disconnected,
            "reconnected_cb": self._on_reconnected,
            "name": f"conductor-events-{self.queue_type}",
        }
        if settings.username is not None:
            options["user"] = settings.username
        if settings.password is not None:
            options["password"] = settings.password.get_secret_value()
        if settings.token is not None:
            options["token"] = settings.token.get_secret_value()
        self._last_error = self._refusal = None
        try:
            async with asyncio.timeout(self.timeout):
                await client.connect(**options)
        except Exception as exc:
            with contextlib.suppress(Exception):
                await client.close()
            # The attempts go on until the timeout; the server's refusal of the credentials,
            # seen on any of them, is the reason, not the reset socket of the one after it.
            cause = (self._refusal or self._last_error) if isinstance(exc, TimeoutError) else exc
            why = describe(cause) if cause is not None else "timed out"
            raise QueueError(
                f"{self.queue_type}: cannot connect to NATS at {settings.shown_url} within "
                f"{self.timeout:g}s: {why}"
            ) from exc
        return client

    async def confirm(self, timeout: float) -> None:
        """Return once the server has read everything this client sent before the call.

        One PING/PONG round trip confirms every publish written before the PING, so
        concurrent callers share the next one instead of each sending its own: under load a
        flush per publish call would queue thousands of round trips.
        """
        waiter = self._next_flush
        if waiter is None:
            loop = asyncio.get_running_loop()
            waiter = self._next_flush = loop.create_future()
            waiter.add_done_callback(_retrieve)  # a caller may have been cancelled meanwhile
            task = loop.create_task(self._flush(waiter, timeout))
            self._flushes.add(task)  # the loop keeps only a weak reference to a task
            task.add_done_callback(self._flushes.discard)
        await asyncio.shield(waiter)

    async def _flush(self, waiter: asyncio.Future[None], timeout: float) -> None:
        self._next_flush = None  # callers from now on wait for the next round trip
        try:
            client = await self.client()
            await client.flush(timeout=max(1, math.ceil(timeout)))  # nats-py takes whole seconds
        except Exception as exc:
            if not waiter.done():
                waiter.set_exception(exc)
        else:
            if not waiter.done():
                waiter.set_result(None)

    async def _on_error(self, exc: Exception) -> None:
        self._last_error = exc
        if _is_refusal(exc):
            self._refusal = exc
        log.debug("nats.connection.error", queue_type=self.queue_type, error=describe(exc))

    async def _on_disconnected(self) -> None:
        if self._closing:
            return
        log.info("nats.connection.lost", queue_type=self.queue_type, url=self.settings.shown_url)

    async def _on_reconnected(self) -> None:
        log.info(
            "nats.connection.restored", queue_type=self.queue_type, url=self.settings.shown_url
        )

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None or client.is_closed:
            return
        self._closing = True
        try:
            # Acks and naks are fire-and-forget publishes: make sure the server has them.
            await client.flush(timeout=math.ceil(FLUSH_TIMEOUT))
        except Exception as exc:
            log.warning("nats.close.flush_failed", queue_type=self.queue_type, error=describe(exc))
        try:
            await client.close()
        except asyncio.CancelledError:
            # nats-py cancels its own socket wait when the server is gone already; only a
            # cancellation of the caller goes on.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
        except Exception as exc:
            log.debug("nats.close.failed", queue_type=self.queue_type, error=describe(exc))
        self._closing = False


def _is_refusal(exc: BaseException) -> bool:
    """Whether the server refused the credentials (``-ERR 'Authorization Violation'``, an
    expired or timed-out authentication), rather than the network failing."""
    text = str(exc).lower()
    return isinstance(exc, NatsError) and ("authorization" in text or "authentication" in text)


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
