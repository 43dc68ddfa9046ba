"""The keep-alive transport under httpx: framing (length, chunked, none), connection reuse,
a server that closes idle connections, and httpx's own error types."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from conductor_events.handlers.transport import StreamTransport

Reply = Callable[[bytes], bytes]
Start = Callable[..., Awaitable["Server"]]


class Server:
    """A raw HTTP server: ``reply`` builds each answer from the request line; it can close a
    connection after each answer."""

    def __init__(self, reply: Reply, *, close_after: bool = False) -> None:
        self.reply = reply
        self.close_after = close_after
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                length = 0
                while (header := await reader.readline()) not in (b"\r\n", b""):
                    if header.lower().startswith(b"content-length:"):
                        length = int(header.split(b":")[1])
                await reader.readexactly(length)
                writer.write(self.reply(line))
                await writer.drain()
                if self.close_after:
                    break
        finally:
            writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"


@pytest.fixture
async def serve() -> AsyncIterator[Start]:
    servers: list[Server] = []

    async def start(reply: Reply, **options: bool) -> Server:
        server = Server(reply, **options)
        server.server = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        servers.append(server)
        return server

    yield start
    for server in servers:
        assert server.server is not None
        server.server.close()


def fixed(body: bytes, *extra: bytes) -> bytes:
    head = [b"HTTP/1.1 200 OK", b"Content-Length: " + str(len(body)).encode(), *extra]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


async def test_content_length_and_reuse(serve: Start) -> None:
    server = await serve(lambda line: fixed(b'{"ok":true}', b"Content-Type: application/json"))
    async with httpx.AsyncClient(transport=StreamTransport(4), base_url=server.url) as client:
        for _ in range(5):
            response = await client.get("/x")
            assert response.json() == {"ok": True}
    assert server.connections == 1


async def test_chunked_answers_with_trailers(serve: Start) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4\r\nabcd\r\n3;ext=1\r\nefg\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )
    server = await serve(lambda line: chunked)
    async with httpx.AsyncClient(transport=StreamTransport(), base_url=server.url) as client:
        assert (await client.get("/x")).text == "abcdefg"
        assert (await client.post("/y", json={"a": 1})).text == "abcdefg"
    assert server.connections == 1


async def test_no_body_answers(serve: Start) -> None:
    server = await serve(lambda line: b"HTTP/1.1 204 No Content\r\n\r\n")
    async with httpx.AsyncClient(transport=StreamTransport(), base_url=server.url) as client:
        response = await client.get("/x")
        assert (response.status_code, response.content) == (204, b"")
        assert (await client.get("/x")).status_code == 204
    assert server.connections == 1


async def test_a_server_that_closes_connections(serve: Start) -> None:
    # "Connection: close" is honoured, and a connection the server closed while idle is
    # replaced without the caller seeing an error.
    server = await serve(lambda line: fixed(b"a", b"Connection: close"))
    quiet = await serve(lambda line: fixed(b"b"), close_after=True)
    async with httpx.AsyncClient(transport=StreamTransport()) as client:
        for _ in range(3):
            assert (await client.get(server.url)).text == "a"
            assert (await client.get(quiet.url)).text == "b"
            await asyncio.sleep(0.01)
    assert server.connections == 3
    assert quiet.connections == 3


async def test_errors_are_httpx_errors(serve: Start) -> None:
    broken = await serve(lambda line: b"", close_after=True)
    async with httpx.AsyncClient(transport=StreamTransport()) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(broken.url)
        assert broken.server is not None
        port = broken.server.sockets[0].getsockname()[1]
        broken.server.close()
        await broken.server.wait_closed()
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/")
