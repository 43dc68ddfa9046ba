"""Execution records: insert-if-absent claims, so a redelivered message never repeats an
action that completed, and a crashed runner's action is taken over after the lease."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conductor_events_handlers.executions import (
    Claim,
    ExecutionKey,
    ExecutionStatus,
    ExecutionStore,
    ExecutionStoreError,
)

KEY = ExecutionKey("local:q", "h1", "m-1", 0)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ExecutionStore]:
    executions = ExecutionStore(tmp_path / "executions.db", lease=60)
    yield executions
    executions.close()


async def test_claim_complete_and_never_again(store: ExecutionStore) -> None:
    assert await store.claim(KEY, "complete_task", "a") is Claim.CLAIMED
    await store.complete(KEY, {"workflowId": "w"})
    assert await store.claim(KEY, "complete_task", "b") is Claim.DONE
    record = await store.get(KEY)
    assert record is not None
    assert (record.status, record.output, record.attempts) == (
        ExecutionStatus.COMPLETED,
        {"workflowId": "w"},
        1,
    )
    assert record.id == "m-1_0"


async def test_a_failed_action_is_claimed_again(store: ExecutionStore) -> None:
    await store.claim(KEY, "complete_task", "a")
    await store.fail(KEY, "HTTP 500")
    failed = await store.get(KEY)
    assert failed is not None
    assert (failed.status, failed.error) == (
        ExecutionStatus.FAILED,
        "HTTP 500",
    )
    assert await store.claim(KEY, "complete_task", "a") is Claim.CLAIMED
    again = await store.get(KEY)
    assert again is not None
    assert (again.status, again.error, again.attempts) == (
        ExecutionStatus.IN_PROGRESS,
        None,
        2,
    )


async def test_in_progress_elsewhere_is_busy_until_the_lease_ends(tmp_path: Path) -> None:
    store = ExecutionStore(tmp_path / "e.db", lease=0.2)
    try:
        assert await store.claim(KEY, "start_workflow", "a") is Claim.CLAIMED
        assert await store.claim(KEY, "start_workflow", "b") is Claim.BUSY
        assert await store.claim(KEY, "start_workflow", "a") is Claim.CLAIMED  # its own claim
        await asyncio.sleep(0.25)  # the runner "a" died: its lease runs out
        assert await store.claim(KEY, "start_workflow", "b") is Claim.CLAIMED
    finally:
        store.close()


async def test_skip_never_overwrites_a_completed_record(store: ExecutionStore) -> None:
    await store.skip(KEY, {"condition": "false"})
    skipped = await store.get(KEY)
    assert skipped is not None
    assert skipped.status is ExecutionStatus.SKIPPED
    assert await store.claim(KEY, "complete_task", "a") is Claim.CLAIMED
    await store.complete(KEY, {})
    await store.skip(KEY, {"condition": "false"})
    await store.fail_handler(KEY, "condition failed")
    done = await store.get(KEY)
    assert done is not None
    assert done.status is ExecutionStatus.COMPLETED


async def test_listing_filters_and_pruning(store: ExecutionStore) -> None:
    for message in ("m-1", "m-2"):
        for event in ("local:a", "local:b"):
            await store.skip(ExecutionKey(event, "h", message, 0), {})
    assert len(await store.records()) == 4
    assert [r.event for r in await store.records(message_id="m-2")] == ["local:a", "local:b"]
    assert [r.message_id for r in await store.records(event="local:b")] == ["m-1", "m-2"]
    newest = await store.records(limit=1)
    assert [(r.message_id, r.event) for r in newest] == [("m-2", "local:b")]
    assert await store.prune(3600) == 0
    assert await store.prune(0) == 4
    assert await store.records() == []


async def test_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    store = ExecutionStore(tmp_path / "nope" / "e.db")
    with pytest.raises(ExecutionStoreError, match=r"conductor\.event-handlers\.executions\.path"):
        await store.records()
