"""The NATS benchmark cases still work: each case and its raw nats-py baseline publish or
consume every message end to end on tiny counts, each against its own nats-server. No figure is
checked here (``python -m bench -b nats``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.smoke import assert_case_does_all_its_work


@pytest.mark.parametrize("case_id", ["nats/jsm-publish", "nats/jsm-consume-ack"])
@pytest.mark.usefixtures("nats_server_binary")
def test_case_and_baseline_do_all_their_work(case_id: str, tmp_path: Path) -> None:
    assert_case_does_all_its_work(case_id, 1000, tmp_path)
