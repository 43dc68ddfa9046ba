"""The AMQP benchmark cases still work: each case and its raw baseline run end to end on tiny
counts against the shared RabbitMQ. No figure is checked here (``python -m bench -b amqp``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rabbit import Broker

from bench.smoke import assert_case_does_all_its_work


@pytest.mark.parametrize("case_id", ["amqp/publish", "amqp/consume-ack", "amqp/consume-ack-each"])
def test_case_and_baseline_do_all_their_work(
    case_id: str, tmp_path: Path, rabbitmq: Broker
) -> None:
    assert_case_does_all_its_work(case_id, 300, tmp_path)
