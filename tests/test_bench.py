"""The benchmark harness still works: every case runs end to end on tiny counts.

No figure is checked here (timings live in ``python -m bench`` only); these tests make sure
the cases do the work they claim (every message published, consumed, acked) and that the
report renders, so the harness does not rot between benchmark runs.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.framework import THROUGHPUT, BenchError, Case, Options, RunContext, Sample
from bench.payloads import PAYLOAD_BYTES, SHAPES, encode, json_payload
from bench.report import as_json, table
from bench.runner import discover, run_all, run_case, select


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    discovered = discover()
    assert discovered.broken == {}
    return discovered.cases


@pytest.mark.parametrize("shape", SHAPES)
def test_payloads_encode_to_exactly_one_kib(shape: str) -> None:
    for index in (0, 7, 123_456):
        assert len(encode(json_payload(index, shape=shape))) == PAYLOAD_BYTES


def test_cases_are_found_and_selectable(cases: list[Case]) -> None:
    ids = [case.id for case in cases]
    assert len(ids) == len(set(ids))
    assert {"local/publish-batch-100", "local/consume-ack", "local/event-task"} <= set(ids)
    assert [c.id for c in select(cases, ["local"], ["publish-*"])] == [
        "local/publish-batch-100",
        "local/publish-batch-1000",
        "local/publish-single",
    ]
    assert [c.id for c in select(cases, [], ["local/consume"])] == [
        "local/consume-ack",
        "local/consume-ack-batch",
    ]
    assert all(c.backend == "cli" for c in select(cases, ["cli"]))


@pytest.mark.parametrize(
    "case_id",
    [
        "local/publish-batch-100",
        "local/publish-single",
        "local/consume-ack",
        "local/consume-ack-batch",
        "local/event-task",
        "local/memory-flat",
        "cli/conductor-events --help",
        "worker/end-to-end",
        "worker/double-capacity",
    ],
)
def test_case_and_baseline_do_all_their_work(
    cases: list[Case], case_id: str, tmp_path: Path
) -> None:
    (case,) = [c for c in cases if c.id == case_id]
    options = Options(quick=True, repeat=2, messages=200, memory_messages=500, workdir=tmp_path)
    result = run_case(case, options)
    assert result.skipped is None
    runs = min(2, case.repeat or 2)
    assert len(result.runs) == runs
    expected = 500 if case.name == "memory-flat" else case.count_for(options)
    assert all(sample.ops == expected for sample in result.runs)
    if case.baseline is not None:
        assert len(result.baseline_runs) == runs
        assert all(sample.ops == expected for sample in result.baseline_runs)
    if case.backend == "cli":
        assert result.notes["SDK modules imported (CONDUCTOR_EVENTS_PLUGINS=local)"] == "none"
    if case.backend == "worker":  # each process's CPU per task, read from /proc
        assert result.notes["double CPU per task"].endswith(" tasks/s)")
    assert case.name in table([result], options)
    document = json.loads(as_json([result], options))
    assert document["results"][0]["case"] == case.name
    assert list(tmp_path.iterdir()) == []  # every run's directory was removed


def test_list_prints_every_case(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "local/publish-single" in out
    assert "cli/conductor-events config check" in out


def test_unknown_filter_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--case", "no-such-case"]) == 2
    assert "no case matches" in capsys.readouterr().err


def test_a_failing_case_is_reported_and_the_others_still_run(tmp_path: Path) -> None:
    def broken(ctx: RunContext) -> Sample:
        raise BenchError("emulator did not start")

    def works(ctx: RunContext) -> Sample:
        return Sample(ctx.count, 0.5)

    cases = [
        Case("x", name, "", THROUGHPUT, measure, count=10, quick_count=5)
        for name, measure in (("broken", broken), ("works", works))
    ]
    options = Options(repeat=1, workdir=tmp_path)
    broken_result, works_result = run_all(cases, options, stream=io.StringIO())
    assert broken_result.error == "BenchError: emulator did not start"
    assert works_result.error is None
    assert works_result.median == 20.0
    text = table([broken_result, works_result], options)
    assert "FAILED" in text
    assert "1 case(s) failed" in text
