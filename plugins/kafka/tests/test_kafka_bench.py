"""The Kafka benchmark cases still work: each case and its raw baseline run end to end on tiny
counts against their own tansu. No figure is checked here (``python -m bench -b kafka``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.framework import Options
from bench.runner import discover, run_case


@pytest.mark.parametrize("case_id", ["kafka/publish-1p", "kafka/publish-3p", "kafka/consume-ack"])
def test_case_and_baseline_do_all_their_work(case_id: str, tmp_path: Path) -> None:
    discovered = discover()
    (case,) = [c for c in discovered.cases if c.id == case_id]
    options = Options(quick=True, repeat=1, messages=300, workdir=tmp_path)
    result = run_case(case, options)
    assert result.skipped is None, result.skipped
    assert [sample.ops for sample in result.runs] == [300]
    assert [sample.ops for sample in result.baseline_runs] == [300]
