"""The Kafka benchmark cases still work: each case and its raw baseline run end to end on tiny
counts against their own tansu. No figure is checked here (``python -m bench -b kafka``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.smoke import assert_case_does_all_its_work


@pytest.mark.parametrize(
    "case_id",
    ["kafka/publish-1p", "kafka/publish-3p", "kafka/consume-ack", "kafka/consume-ack-each"],
)
def test_case_and_baseline_do_all_their_work(case_id: str, tmp_path: Path) -> None:
    assert_case_does_all_its_work(case_id, 300, tmp_path)
