"""The service's HTTP endpoint: ``/health``, ``/ready`` and ``/metrics``.

A small HTTP/1.1 server on asyncio streams (one request per connection), enough for probes
and Prometheus scrapes, so the service needs no web framework:

* ``GET /health``: 200 while the service runs (liveness), with each listener's state;
* ``GET /ready``: 200 when every listener is connected, 503 otherwise (also while starting
  and stopping), with a JSON body per listener;
* ``GET /metrics``: the Prometheus text format.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST

log = structlog.get_logger(__name__)

_READ_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Probe:
    """What the endpoints report: ``status()`` is ``(ready, body)``; ``metrics()`` the
    Prometheus text."""

    status: Callable[[], tuple[bool, dict[str, Any]]]
    metrics: Callable[[], bytes]


def parse_address(value: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT``; the host defaults to 127.0.0.1."""
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "", value
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT or PORT, got {value!r}")
    return host, int(port)


class HttpEndpoint:
    """Serves the probe on ``host:port`` (port 0 picks a free one; see :attr:`port`)."""

    def __init__(self, probe: Probe, host: str = "127.0.0.1", port: int = 0) -> None:
        self.probe = probe
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("serve.http.listening", host=self.host, port=self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), _READ_TIMEOUT)
            while True:  # skip the headers: no endpoint reads them
                line = await asyncio.wait_for(reader.readline(), _READ_TIMEOUT)
                if line in (b"\r\n", b"\n", b""):
                    break
            parts = request.decode("latin-1").split()
            status, content_type, body = self._answer(*(parts[:2] if len(parts) >= 2 else ("", "")))
            head = (
                f"HTTP/1.1 {status.value} {status.phrase}\r\n"
                f"Content-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + body)
            await writer.drain()
        except (ConnectionError, TimeoutError, UnicodeError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _answer(self, method: str, target: str) -> tuple[HTTPStatus, str, bytes]:
        path = target.split("?", 1)[0]
        if method != "GET":
            return _json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "only GET is supported"})
        if path == "/metrics":
            return HTTPStatus.OK, CONTENT_TYPE_LATEST, self.probe.metrics()
        if path in ("/health", "/ready"):
            ready, body = self.probe.status()
            if path == "/health":
                return _json(HTTPStatus.OK, {"status": "ok", **body})
            code = HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE
            return _json(code, {"status": "ready" if ready else "not ready", **body})
        return _json(HTTPStatus.NOT_FOUND, {"error": f"no resource {path}"})


def _json(status: HTTPStatus, value: Any) -> tuple[HTTPStatus, str, bytes]:
    return status, "application/json", json.dumps(value, ensure_ascii=False).encode()
