"""A tiny HTTP forward proxy on 127.0.0.1, for tests that check requests go through a proxy.

A client that uses an HTTP proxy for an ``http://`` URL sends the request to the proxy with
the absolute URL in its request line (``GET http://host:port/path HTTP/1.1``). This proxy
records that line, opens a connection to the host and port it names, and then relays bytes both
ways until either side closes. The request line is passed on as it came: the Conductor double
reads a path out of an absolute URL as well.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Self

from yarl import URL


class ForwardProxy:
    """``async with ForwardProxy() as proxy``: serves on a free port; ``proxy.request_lines``
    holds the first request line of each connection it relayed."""

    def __init__(self) -> None:
        self.request_lines: list[str] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._relays: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for relay in list(self._relays):
            relay.cancel()
        if self._relays:
            await asyncio.wait(list(self._relays))
        with contextlib.suppress(Exception):
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._relays.add(task)
        try:
            line = await reader.readline()
            if not line:
                return
            self.request_lines.append(line.decode("latin-1").strip())
            target = URL(line.split(b" ")[1].decode("latin-1"))
            upstream_reader, upstream_writer = await asyncio.open_connection(
                target.host, target.port or 80
            )
            upstream_writer.write(line)
            try:
                await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
            finally:
                upstream_writer.close()
        except (ConnectionError, asyncio.CancelledError, OSError):
            pass
        finally:
            writer.close()
            self._relays.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    finally:
        writer.close()
