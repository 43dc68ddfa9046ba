"""The commit position of a partition is its first offset not yet settled, whatever order
deliveries are settled in (no broker needed: the bookkeeping alone)."""

from __future__ import annotations

import random
from typing import Any, cast

from conductor_events_kafka.consume import _Partition


def new_partition() -> _Partition:
    """Bookkeeping alone: no subscription or partition behind it."""
    return _Partition(cast(Any, None), None)


def test_commit_target_is_the_lowest_unsettled_offset_in_any_settle_order() -> None:
    """Settled one by one (``ack``, ``settle_one``) or in runs of any length (``ack_many``),
    in any order."""
    rng = random.Random(5)
    for _ in range(500):
        partition = new_partition()
        start = rng.randint(0, 1000)
        offsets = list(range(start, start + rng.randint(1, 40)))
        partition.fetched(offsets)
        order = offsets[:]
        rng.shuffle(order)
        if rng.random() < 0.3:
            order.sort()  # in fetch order, as a batch is usually acked
        settled: set[int] = set()
        while order:
            run = order[: rng.randint(1, 8)]
            order = order[len(run) :]
            if len(run) == 1 and rng.random() < 0.5:
                partition.settle_one(run[0])  # one ``ack``
            else:
                partition.settle(run)
            settled.update(run)
            lowest = min((o for o in offsets if o not in settled), default=offsets[-1] + 1)
            assert partition.commit_target() == lowest, (run, offsets)


def test_nothing_new_to_commit_after_a_commit() -> None:
    partition = new_partition()
    assert partition.commit_target() is None, "nothing fetched: nothing to commit"
    partition.fetched([7, 8, 9])
    assert partition.commit_target() == 7
    partition.settle([8])
    assert partition.commit_target() == 7
    partition.committed = 7
    assert partition.commit_target() is None
    partition.settle([7])
    assert partition.commit_target() == 9
    partition.settle([9])
    assert partition.commit_target() == 10
