"""A smoke check for a backend's test suite: one case and its raw baseline run end to end on a
small count and each do all their work. Timings are not looked at (a test must not assert
on speed); what fails is a case that stops early, errors, or is skipped for a missing
dependency."""

from __future__ import annotations

from pathlib import Path

from bench.framework import Options
from bench.runner import discover, run_case


def assert_case_does_all_its_work(case_id: str, messages: int, workdir: Path) -> None:
    """Run ``case_id`` once (and its baseline) with ``messages`` messages each."""
    (case,) = [c for c in discover().cases if c.id == case_id]
    options = Options(quick=True, repeat=1, messages=messages, workdir=workdir)
    result = run_case(case, options)
    assert result.skipped is None, result.skipped
    assert [sample.ops for sample in result.runs] == [messages]
    if case.baseline is not None:
        assert [sample.ops for sample in result.baseline_runs] == [messages]
