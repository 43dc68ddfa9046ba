"""The tests' broker check: a closed port skips the AMQP tests, except under ``CI=true``."""

from __future__ import annotations

import socket

from rabbit import Broker, missing_broker


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_closed_port_skips_with_the_reason() -> None:
    port = closed_port()
    found = missing_broker(Broker(port=port), {})
    assert found is not None
    why, fail = found
    assert fail is False
    assert f"RabbitMQ is not listening on 127.0.0.1:{port}" in why


def test_under_ci_a_closed_port_fails() -> None:
    found = missing_broker(Broker(port=closed_port()), {"CI": "true"})
    assert found is not None
    why, fail = found
    assert fail is True
    assert "CI=true" in why


def test_a_listening_port_is_no_problem() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        assert missing_broker(Broker(port=sock.getsockname()[1]), {"CI": "true"}) is None
