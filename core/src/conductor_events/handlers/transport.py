"""A lean HTTP/1.1 keep-alive transport for httpx, on asyncio streams.

httpx's default transport (httpcore over anyio) costs about half a millisecond per request
in CPU, and more under concurrency; a handler action is one or two requests, so at a thousand
messages a second the transport alone would need more than a core. This transport keeps
httpx's client (URLs, headers, auth flows, timeouts, ``Response``) and replaces only the wire
part: a pool of persistent connections, requests written in one piece, responses read with
``Content-Length`` or chunked framing. It speaks what Conductor's REST API needs and no more:
no HTTP/2, no proxies, no compressed bodies (it asks for ``identity``).

Errors are httpx's own (``ConnectError``, ``ConnectTimeout``, ``ReadTimeout``,
``RemoteProtocolError``), so callers classify failures the same way with either transport. A
request that fails on a reused connection before any byte of the answer arrives (the server
had closed the idle connection) is sent once more on a new connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from dataclasses import dataclass, field

import httpx

_NO_BODY = frozenset({204, 304})


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def close(self) -> None:
        self.writer.close()


@dataclass
class _Pool:
    idle: deque[_Connection] = field(default_factory=deque)


class _NoAnswer(Exception):
    """The connection closed before the first byte of the answer."""


class StreamTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over pooled asyncio connections, at most ``max_connections`` at once."""

    def __init__(
        self, max_connections: int = 50, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self._slots = asyncio.Semaphore(max_connections)
        self._pools: dict[tuple[str, str, int], _Pool] = {}
        self._ssl = ssl_context
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        connect_timeout = timeouts.get("connect")
        read_timeout = timeouts.get("read")
        url = request.url
        scheme = url.scheme
        port = url.port or (443 if scheme == "https" else 80)
        key = (scheme, url.host, port)
        body = await request.aread()
        head = _request_head(request, len(body))
        async with self._slots:
            for attempt in range(2):
                connection, reused = await self._acquire(key, connect_timeout, request)
                try:
                    connection.writer.write(head + body)
                    await connection.writer.drain()
                    status, headers, content, keep = await asyncio.wait_for(
                        _read_response(connection.reader, request.method), read_timeout
                    )
                except _NoAnswer:
                    connection.close()
                    if reused and attempt == 0:
                        continue
                    raise httpx.RemoteProtocolError(
                        "Server disconnected without sending a response.", request=request
                    ) from None
                except TimeoutError:
                    connection.close()
                    raise httpx.ReadTimeout(
                        "timed out waiting for the answer", request=request
                    ) from None
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    connection.close()
                    raise httpx.RemoteProtocolError(
                        f"{type(exc).__name__}: {exc}", request=request
                    ) from None
                except BaseException:
                    connection.close()
                    raise
                if keep and not self._closed:
                    self._pools.setdefault(key, _Pool()).idle.append(connection)
                else:
                    connection.close()
                return httpx.Response(
                    status,
                    headers=headers,
                    content=content,
                    extensions={"http_version": b"HTTP/1.1"},
                )
        raise AssertionError("unreachable")

    async def _acquire(
        self, key: tuple[str, str, int], timeout: float | None, request: httpx.Request
    ) -> tuple[_Connection, bool]:
        pool = self._pools.get(key)
        while pool is not None and pool.idle:
            connection = pool.idle.pop()
            if not connection.reader.at_eof() and not connection.writer.is_closing():
                return connection, True
            connection.close()
        scheme, host, port = key
        context = None
        if scheme == "https":
            context = self._ssl or ssl.create_default_context()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=context, limit=1 << 20), timeout
            )
        except TimeoutError:
            raise httpx.ConnectTimeout(
                f"connecting to {host}:{port} timed out", request=request
            ) from None
        except OSError as exc:
            raise httpx.ConnectError(f"{exc.strerror or exc}", request=request) from None
        return _Connection(reader, writer), False

    async def aclose(self) -> None:
        self._closed = True
        for pool in self._pools.values():
            while pool.idle:
                connection = pool.idle.pop()
                connection.close()
                with contextlib.suppress(Exception):
                    await connection.writer.wait_closed()
        self._pools.clear()


def _request_head(request: httpx.Request, length: int) -> bytes:
    url = request.url
    target = url.raw_path  # path and query, already encoded
    lines = [request.method.encode() + b" " + target + b" HTTP/1.1"]
    seen = set()
    for name, value in request.headers.raw:
        lower = name.lower()
        if lower in (b"content-length", b"transfer-encoding", b"connection", b"accept-encoding"):
            continue
        seen.add(lower)
        lines.append(name + b": " + value)
    if b"host" not in seen:
        lines.append(b"Host: " + url.netloc)
    lines.append(b"Accept-Encoding: identity")
    if length or request.method in ("POST", "PUT", "PATCH"):
        lines.append(b"Content-Length: " + str(length).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def _read_response(
    reader: asyncio.StreamReader, method: str
) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
    """Status, headers, body, and whether the connection can be used again."""
    status_line = await reader.readline()
    if not status_line:
        raise _NoAnswer
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError(f"not an HTTP/1.1 status line: {status_line[:80]!r}")
    status = int(parts[1])
    headers: list[tuple[bytes, bytes]] = []
    length: int | None = None
    chunked = False
    keep = parts[0] == b"HTTP/1.1"
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n"):
            break
        if not line:
            raise asyncio.IncompleteReadError(b"", None)
        name, _, value = line.partition(b":")
        name, value = name.strip(), value.strip()
        headers.append((name, value))
        lower = name.lower()
        if lower == b"content-length":
            length = int(value)
        elif lower == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif lower == b"connection":
            keep = value.lower() != b"close" if keep else value.lower() == b"keep-alive"
    if status in _NO_BODY or status < 200 or method == "HEAD":
        return status, headers, b"", keep
    if chunked:
        body = bytearray()
        while True:
            size_line = await reader.readline()
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        headers = [(n, v) for n, v in headers if n.lower() != b"transfer-encoding"]
        return status, headers, bytes(body), keep
    if length is not None:
        return status, headers, await reader.readexactly(length), keep
    return status, headers, await reader.read(), False
