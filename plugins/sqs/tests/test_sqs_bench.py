"""The SQS consume benchmark cases still work: each case and its raw baseline consume every
message end to end on tiny counts against their own moto server. No figure is checked here
(``python -m bench -b sqs``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.smoke import assert_case_does_all_its_work


@pytest.mark.parametrize("case_id", ["sqs/consume-cpu", "sqs/consume-cpu-each"])
def test_case_and_baseline_do_all_their_work(case_id: str, tmp_path: Path) -> None:
    assert_case_does_all_its_work(case_id, 120, tmp_path)
